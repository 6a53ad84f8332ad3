package proxier

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func fatMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}}
	m.OwnerReferences = []metav1.OwnerReference{{Kind: "Service", Name: "x"}}
	m.Finalizers = []string{"f"}
	m.ResourceVersion = "7"
	m.UID, m.GenerateName = "0b4c6a2e-1111-4222-8333-944455556666", "gen-"
}

// TestStripObjectKeepsWhatTheTrackerReads: the stripped objects convert to
// exactly what the originals convert to, and the stripped fields are gone.
func TestStripObjectKeepsWhatTheTrackerReads(t *testing.T) {
	s := svc("ns", "a", "10.96.0.10", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Selector = map[string]string{"app": "a"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30100
		s.Spec.ExternalIPs = []string{"198.51.100.200"}
		s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.201"}}
		s.Labels = map[string]string{"app": "a"}
		s.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
		fatMeta(&s.ObjectMeta)
	})
	es := slice("ns", "a", "a-1", epSpec{ip: "10.244.1.5", node: "n1"})
	es.Endpoints[0].TargetRef = &v1.ObjectReference{Kind: "Pod", Name: "p"}
	es.Endpoints[0].Hostname = ptr.To("p")
	es.Endpoints[0].Zone = ptr.To("z1")
	es.Endpoints[0].Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: "z1"}}}
	es.Annotations = map[string]string{AnnotationTriggerTime: "2026-01-02T03:04:05Z", "other": "x"}
	fatMeta(&es.ObjectMeta)
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{LabelZone: "z1"}, Annotations: map[string]string{"a": "b"}},
		Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}, Taints: []v1.Taint{{Key: TaintToBeDeletedByCA}}},
		Status: v1.NodeStatus{
			Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "198.51.100.2"}},
			Images:    []v1.ContainerImage{{Names: []string{"registry/big:1"}, SizeBytes: 1 << 30}},
		}}
	fatMeta(&n.ObjectMeta)

	wantPorts, _ := ServicePortsFromAPI(s, IPv4)
	wantSlice, _ := SliceFromAPI(es)
	wantNode := NodeInfoFromAPI(n, "n1", IPv4)

	for pass := 0; pass < 2; pass++ { // idempotent
		for _, o := range []any{s, es, n} {
			if got, err := StripObject(o); err != nil || got != o {
				t.Fatalf("StripObject(%T) = %v, %v", o, got, err)
			}
		}
		gotPorts, _ := ServicePortsFromAPI(s, IPv4)
		gotSlice, _ := SliceFromAPI(es)
		if !reflect.DeepEqual(gotPorts, wantPorts) || !reflect.DeepEqual(gotSlice, wantSlice) ||
			!reflect.DeepEqual(NodeInfoFromAPI(n, "n1", IPv4), wantNode) {
			t.Fatalf("pass %d: stripping changed what the tracker sees:\nports %+v\n want %+v\nslice %+v\n want %+v", pass, gotPorts, wantPorts, gotSlice, wantSlice)
		}
	}
	if s.ManagedFields != nil || s.Annotations != nil || s.Spec.Selector != nil || s.OwnerReferences != nil || s.ResourceVersion != "7" ||
		s.UID != "" || es.UID != "" || es.GenerateName != "" {
		t.Errorf("service not stripped as expected: %+v", s.ObjectMeta)
	}
	if s.Labels != nil {
		t.Errorf("service labels not read by the tracker kept: %v", s.Labels)
	}
	if len(es.Labels) != 1 || len(es.Annotations) != 1 || es.Annotations[AnnotationTriggerTime] == "" || es.ManagedFields != nil || es.Endpoints[0].TargetRef != nil {
		t.Errorf("slice not stripped as expected: %+v", es)
	}
	if n.Status.Images != nil || n.Annotations != nil || len(n.Status.Addresses) != 1 {
		t.Errorf("node not stripped as expected: %+v", n)
	}
	if got, _ := StripObject("other"); got != "other" {
		t.Errorf("other types must pass through")
	}
}
