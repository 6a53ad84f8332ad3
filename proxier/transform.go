package proxier

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StripObject is the informers' cache.TransformFunc: it drops, before an
// object enters the informer cache, every field the Tracker never reads
// (managedFields, UIDs, labels and annotations other than the ones it reads,
// owner references, a Service's selector, endpoint target references and
// hostnames, a Node's status other than its addresses, a ServiceCIDR's
// labels and status). The label and annotation keys kept are the package's
// constants, so the cached maps do not hold a copy of the key per object. At 10,000 Services this roughly
// halves what the informer caches hold. It changes objects in place (they
// are freshly decoded), keeps any other type as it is, and is idempotent,
// as client-go requires.
func StripObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1.Service:
		stripMeta(&o.ObjectMeta)
		o.Labels = keepOnly(o.Labels, LabelServiceProxyName)
		o.Spec.Selector = nil
	case *discovery.EndpointSlice:
		trigger := keepOnly(o.Annotations, AnnotationTriggerTime)
		stripMeta(&o.ObjectMeta)
		o.Labels = keepOnly(o.Labels, discovery.LabelServiceName, LabelHeadless)
		o.Annotations = trigger
		for i := range o.Endpoints {
			o.Endpoints[i].TargetRef = nil
			o.Endpoints[i].Hostname = nil
			o.Endpoints[i].DeprecatedTopology = nil
		}
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
