package proxier

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrackedService is what the Service informer keeps of a Service: its
// identity and its ports as the tracker reads them. The informer's
// transform (Tracker.Transform) turns every Service into one before it is
// cached, so the API object is not kept next to the tracker's own form:
// the two copies were about a third of kproxy's live heap at 10,000
// Services.
type TrackedService struct {
	objectID
	ports familyPorts
	// problems are the invalid parts found while reading the Service,
	// reported each time it changes.
	problems []error
}

// TrackedSlice is what the EndpointSlice informer keeps of a slice (see
// TrackedService).
type TrackedSlice struct {
	objectID
	// service is the slice's Service (its service-name label).
	service string
	// slice is nil when no part of the slice can be used.
	slice    *Slice
	problems []error
}

// TrackService reads svc for the tracker's families; nil stays nil.
func (t *Tracker) TrackService(svc *v1.Service) *TrackedService {
	if svc == nil {
		return nil
	}
	ts := &TrackedService{objectID: identity(&svc.ObjectMeta)}
	ts.ports.selector = len(svc.Spec.Selector) > 0
	for _, f := range t.families {
		p, errs := ServicePortsFromAPI(svc, f)
		ts.ports.set(f, p)
		ts.problems = append(ts.problems, errs...)
	}
	return ts
}

// TrackSlice reads es; nil stays nil.
func TrackSlice(es *discovery.EndpointSlice) *TrackedSlice {
	if es == nil {
		return nil
	}
	ts := &TrackedSlice{objectID: identity(&es.ObjectMeta), service: es.Labels[discovery.LabelServiceName]}
	ts.slice, ts.problems = SliceFromAPI(es)
	return ts
}

// objectID is the part of an object's metadata the informer and the
// tracker need.
type objectID struct{ Namespace, Name, ResourceVersion string }

func identity(m *metav1.ObjectMeta) objectID {
	return objectID{Namespace: m.Namespace, Name: m.Name, ResourceVersion: m.ResourceVersion}
}

// GetObjectMeta makes the tracked forms metav1.ObjectMetaAccessors, all
// client-go's informers need of a cached object (its key and its
// resourceVersion, through meta.Accessor). A whole ObjectMeta in each
// would be about half of its size.
func (id *objectID) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Namespace: id.Namespace, Name: id.Name, ResourceVersion: id.ResourceVersion}
}

// Transform is the Service and EndpointSlice informers' cache.TransformFunc:
// it turns each object into its tracked form (other types are stripped by
// StripObject). It is idempotent, as client-go requires.
func (t *Tracker) Transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.Service:
		return t.TrackService(o), nil
	case *discovery.EndpointSlice:
		return TrackSlice(o), nil
	}
	return StripObject(obj)
}
