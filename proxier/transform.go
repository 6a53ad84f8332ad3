package proxier

import (
	v1 "k8s.io/api/core/v1"
	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StripObject is the Node and ServiceCIDR informers' cache.TransformFunc:
// it drops, before an object enters the informer cache, every field the
// Tracker never reads (managedFields, UIDs, labels and annotations other
// than the ones it reads, owner references, a Node's status other than its
// addresses, a ServiceCIDR's labels and status). The label keys kept are
// the package's constants, so the cached maps do not hold a copy of the key
// per object. It changes objects in place (they are freshly decoded), keeps
// any other type as it is, and is idempotent, as client-go requires.
// Services and EndpointSlices are not stripped but replaced by their tracked
// form (Tracker.Transform).
func StripObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *networking.ServiceCIDR:
		stripMeta(&o.ObjectMeta)
		o.Labels = nil
		o.Status = networking.ServiceCIDRStatus{}
	case *v1.Node:
		stripMeta(&o.ObjectMeta)
		o.Labels = keepOnly(o.Labels, LabelZone)
		o.Status = v1.NodeStatus{Addresses: o.Status.Addresses}
	}
	return obj, nil
}

// stripMeta drops managedFields, owner references, finalizers, all
// annotations, the UID and the generateName.
func stripMeta(m *metav1.ObjectMeta) {
	m.UID, m.GenerateName = "", ""
	m.ManagedFields = nil
	m.OwnerReferences = nil
	m.Finalizers = nil
	m.Annotations = nil
}

// keepOnly returns a map with only the given keys of m (nil if none).
func keepOnly(m map[string]string, keys ...string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}
