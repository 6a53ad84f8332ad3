package proxier

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StripObject is the informers' cache.TransformFunc: it drops, before an
// object enters the informer cache, every field the Tracker never reads
// (managedFields, annotations other than the EndpointSlice trigger time,
// owner references, a Node's status other than its addresses, a Service's
// selector, endpoint target references and hostnames). At 10,000 Services
// the cached objects are then a fraction of their API size. It changes
// objects in place (they are freshly decoded), keeps any other type as it
// is, and is idempotent, as client-go requires.
func StripObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.Service:
		stripMeta(&o.ObjectMeta, "")
		o.Spec.Selector = nil
	case *discovery.EndpointSlice:
		stripMeta(&o.ObjectMeta, AnnotationTriggerTime)
		for i := range o.Endpoints {
			o.Endpoints[i].TargetRef = nil
			o.Endpoints[i].Hostname = nil
			o.Endpoints[i].DeprecatedTopology = nil
		}
	case *v1.Node:
		stripMeta(&o.ObjectMeta, "")
		o.Status = v1.NodeStatus{Addresses: o.Status.Addresses}
	}
	return obj, nil
}

// stripMeta drops managedFields, owner references, finalizers and every
// annotation but keep ("" keeps none).
func stripMeta(m *metav1.ObjectMeta, keep string) {
	m.ManagedFields = nil
	m.OwnerReferences = nil
	m.Finalizers = nil
	if v, ok := m.Annotations[keep]; ok && keep != "" {
		if len(m.Annotations) > 1 {
			m.Annotations = map[string]string{keep: v}
		}
		return
	}
	m.Annotations = nil
}
