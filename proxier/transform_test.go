package proxier

import (
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func fatMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}}
	m.OwnerReferences = []metav1.OwnerReference{{Kind: "Service", Name: "x"}}
	m.Finalizers = []string{"f"}
	m.ResourceVersion = "7"
	m.UID, m.GenerateName = "0b4c6a2e-1111-4222-8333-944455556666", "gen-"
}

// TestTransformTracksServicesAndSlices: the informer keeps the tracked form
// of Services and EndpointSlices, holding only their identity besides what
// the tracker reads, and a tracker fed with it sees what one fed with the
// API objects sees.
func TestTransformTracksServicesAndSlices(t *testing.T) {
	s := svc("ns", "a", "10.96.0.10", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Selector = map[string]string{"app": "a"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30100
		s.Spec.ExternalIPs = []string{"198.51.100.200", "not-an-ip"}
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

	var reported []string
	report := func(kind, name string, _ error) { reported = append(reported, kind+" "+name) }
	fromAPI := NewTracker("n1", []Family{IPv4}, nil, time.Time{})
	fromAPI.OnService(nil, s)
	fromAPI.OnEndpointSlice(nil, es)
	tracked := NewTracker("n1", []Family{IPv4}, report, time.Time{})
	ts, err := tracked.Transform(s)
	if err != nil {
		t.Fatal(err)
	}
	tes, err := tracked.Transform(es)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []any{ts, tes} {
		if again, err := tracked.Transform(o); err != nil || again != o {
			t.Errorf("Transform(%T) is not idempotent: %v, %v", o, again, err)
		}
	}
	trackedSvc, trackedSlice := ts.(*TrackedService), tes.(*TrackedSlice)
	for _, o := range []any{ts, tes} {
		// What client-go's informers read of a cached object.
		key, err := cache.MetaNamespaceKeyFunc(o)
		m, merr := meta.Accessor(o)
		if err != nil || merr != nil || key != "ns/"+m.GetName() || m.GetResourceVersion() != "7" {
			t.Errorf("%T: key %q (%v), accessor %v", o, key, err, merr)
		}
	}
	if trackedSvc.Name != "a" || trackedSlice.Name != "a-1" || trackedSlice.service != "a" {
		t.Errorf("tracked identities: %+v, %+v (service %q)", trackedSvc.objectID, trackedSlice.objectID, trackedSlice.service)
	}
	tracked.OnTrackedService(nil, trackedSvc)
	tracked.OnTrackedSlice(nil, trackedSlice)
	if len(reported) != 1 || reported[0] != "Service ns/a" {
		t.Errorf("reported %v, want the Service's bad externalIP once", reported)
	}
	if want, got := fromAPI.Checkout(), tracked.Checkout(); !reflect.DeepEqual(want.Snapshots, got.Snapshots) {
		t.Errorf("tracked objects give\n%+v\nwant\n%+v", got.Snapshots[IPv4].Services, want.Snapshots[IPv4].Services)
	}
}

// TestStripObjectKeepsWhatTheTrackerReads: a stripped Node converts to
// exactly what the original converts to, and the stripped fields are gone.
func TestStripObjectKeepsWhatTheTrackerReads(t *testing.T) {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{LabelZone: "z1"}, Annotations: map[string]string{"a": "b"}},
		Spec: v1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}, Taints: []v1.Taint{{Key: TaintToBeDeletedByCA}}},
		Status: v1.NodeStatus{
			Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "198.51.100.2"}},
			Images:    []v1.ContainerImage{{Names: []string{"registry/big:1"}, SizeBytes: 1 << 30}},
		}}
	fatMeta(&n.ObjectMeta)
	wantNode := NodeInfoFromAPI(n, "n1", IPv4)
	for pass := 0; pass < 2; pass++ { // idempotent
		if got, err := StripObject(n); err != nil || got != n {
			t.Fatalf("StripObject(%T) = %v, %v", n, got, err)
		}
		if got := NodeInfoFromAPI(n, "n1", IPv4); !reflect.DeepEqual(got, wantNode) {
			t.Fatalf("pass %d: stripping changed what the tracker sees: %+v, want %+v", pass, got, wantNode)
		}
	}
	if n.Status.Images != nil || n.Annotations != nil || len(n.Status.Addresses) != 1 || n.UID != "" || n.ManagedFields != nil {
		t.Errorf("node not stripped as expected: %+v", n)
	}
	if got, _ := StripObject("other"); got != "other" {
		t.Errorf("other types must pass through")
	}
}
