package proxier

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func newTestTracker(invalid func(kind, name string, err error)) *Tracker {
	return NewTracker("me", []Family{IPv4, IPv6}, invalid, time.Unix(1000, 0))
}

func changedNames(c Checkout, f Family) string {
	var s []string
	for _, n := range c.Changed[f].Sorted() {
		s = append(s, n.String())
	}
	return strings.Join(s, ",")
}

func TestTrackerChangesAndNoOps(t *testing.T) {
	tr := newTestTracker(nil)
	a := svc("ns", "a", "10.96.0.1")
	b := svc("ns", "b", "10.96.0.2")
	tr.OnService(nil, a)
	tr.OnService(nil, b)
	tr.OnEndpointSlice(nil, slice("ns", "a", "a-1", epSpec{ip: "10.244.1.10", node: "me"}))
	c := tr.Checkout()
	if got := changedNames(c, IPv4); got != "ns/a,ns/b" {
		t.Fatalf("changed = %q", got)
	}
	if len(c.Changed[IPv6]) != 0 || len(c.Snapshots[IPv6].Services) != 0 {
		t.Fatalf("IPv4-only Services must not appear in the IPv6 snapshot")
	}
	p := c.Snapshots[IPv4].Services[types.NamespacedName{Namespace: "ns", Name: "a"}].Ports[0]
	if len(p.Usable.Cluster) != 1 || !p.Usable.Cluster[0].Local {
		t.Fatalf("usable %+v", p.Usable)
	}
	first := c.Snapshots[IPv4]

	// A resync (same resourceVersion) and an update that changes nothing
	// a proxy cares about are both dropped.
	tr.OnService(a, a)
	a2 := a.DeepCopy()
	a2.ResourceVersion = "2"
	a2.Annotations = map[string]string{"unrelated": "x"}
	tr.OnService(a, a2)
	if s, e := tr.Pending(); s != 0 || e != 0 {
		t.Fatalf("pending %d/%d after no-op updates", s, e)
	}
	// A round trip A→B→A between two checkouts yields no change.
	a3 := a2.DeepCopy()
	a3.ResourceVersion = "3"
	a3.Spec.Ports[0].Port = 81
	tr.OnService(a2, a3)
	tr.OnService(a3, a2)
	c = tr.Checkout()
	if got := changedNames(c, IPv4); got != "" {
		t.Fatalf("round trip reported a change: %q", got)
	}
	// Unchanged Services keep their *Service across snapshots.
	n := types.NamespacedName{Namespace: "ns", Name: "b"}
	if c.Snapshots[IPv4].Services[n] != first.Services[n] {
		t.Fatal("unchanged Service was rebuilt")
	}
	// Delete.
	tr.OnService(b, nil)
	c = tr.Checkout()
	if got := changedNames(c, IPv4); got != "ns/b" || c.Snapshots[IPv4].Services[n] != nil {
		t.Fatalf("delete: changed=%q", got)
	}
	// The old snapshot is immutable.
	if first.Services[n] == nil {
		t.Fatal("a later checkout modified an earlier snapshot")
	}
}

func TestTrackerEndpointsAndTriggerTimes(t *testing.T) {
	tr := newTestTracker(nil)
	tr.OnService(nil, svc("ns", "a", "10.96.0.1"))
	tr.Checkout()
	es := slice("ns", "a", "a-1", epSpec{ip: "10.244.1.10"})
	es.Annotations = map[string]string{AnnotationTriggerTime: time.Unix(2000, 0).UTC().Format(time.RFC3339)}
	tr.OnEndpointSlice(nil, es)
	old := slice("ns", "a", "a-2", epSpec{ip: "10.244.1.11"})
	old.Annotations = map[string]string{AnnotationTriggerTime: time.Unix(500, 0).UTC().Format(time.RFC3339)}
	tr.OnEndpointSlice(nil, old)
	c := tr.Checkout()
	if changedNames(c, IPv4) != "ns/a" || c.EndpointChanges != 2 {
		t.Fatalf("changed=%q endpointChanges=%d", changedNames(c, IPv4), c.EndpointChanges)
	}
	if len(c.TriggerTimes) != 1 || len(c.TriggerTimes[IPv4]) != 1 || !c.TriggerTimes[IPv4][0].Equal(time.Unix(2000, 0)) {
		t.Fatalf("trigger times %v (times before the tracker started are ignored)", c.TriggerTimes)
	}
	eps := c.Snapshots[IPv4].Services[types.NamespacedName{Namespace: "ns", Name: "a"}].Ports[0].Endpoints
	if len(eps) != 2 {
		t.Fatalf("endpoints %v", eps)
	}
	tr.OnEndpointSlice(es, nil)
	tr.OnEndpointSlice(old, nil)
	c = tr.Checkout()
	p := c.Snapshots[IPv4].Services[types.NamespacedName{Namespace: "ns", Name: "a"}].Ports[0]
	if changedNames(c, IPv4) != "ns/a" || len(p.Endpoints) != 0 || p.Usable.HasAny {
		t.Fatalf("after slice deletes: %+v", p)
	}
}

func TestTrackerNodeChangeRebuildsTopology(t *testing.T) {
	tr := newTestTracker(nil)
	tr.OnService(nil, svc("ns", "a", "10.96.0.1"))
	tr.OnEndpointSlice(nil, slice("ns", "a", "a-1",
		epSpec{ip: "10.244.1.10", zoneHints: []string{"z1"}}, epSpec{ip: "10.244.1.11", zoneHints: []string{"z2"}}))
	c := tr.Checkout()
	n := types.NamespacedName{Namespace: "ns", Name: "a"}
	if got := len(c.Snapshots[IPv4].Services[n].Ports[0].Usable.Cluster); got != 2 {
		t.Fatalf("without a zone all endpoints are used, got %d", got)
	}
	tr.OnNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "me", Labels: map[string]string{LabelZone: "z2"}},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "198.51.100.10"}, {Type: v1.NodeInternalIP, Address: "fd00::10"}}}})
	c = tr.Checkout()
	if !c.NodeChanged || changedNames(c, IPv4) != "ns/a" {
		t.Fatalf("node change: %v %q", c.NodeChanged, changedNames(c, IPv4))
	}
	u := c.Snapshots[IPv4].Services[n].Ports[0].Usable
	if len(u.Cluster) != 1 || u.Cluster[0].IP.String() != "10.244.1.11" {
		t.Fatalf("zone hints not applied after the node got its zone: %+v", u.Cluster)
	}
	if ips := c.Snapshots[IPv6].Node.IPs; len(ips) != 1 || ips[0].String() != "fd00::10" {
		t.Fatalf("IPv6 node IPs %v", ips)
	}
}

func TestTrackerReportsInvalidOncePerChange(t *testing.T) {
	var reports []string
	tr := newTestTracker(func(kind, name string, err error) { reports = append(reports, kind+" "+name+": "+err.Error()) })
	bad := svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{"nope"}
		s.Spec.ClusterIPs = []string{"10.96.0.1", "fd00::1"}
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	})
	tr.OnService(nil, bad)
	tr.OnService(bad, bad) // resync
	if len(reports) != 1 || !strings.Contains(reports[0], `"nope"`) || strings.Count(reports[0], "nope") != 1 {
		t.Fatalf("reports %q (want one line, deduplicated across families)", reports)
	}
	es := slice("ns", "a", "a-1", epSpec{ip: "10.244.1.10"}, epSpec{ip: "fd00::1"})
	es.Endpoints[0].Conditions.Ready = ptr.To(true)
	tr.OnEndpointSlice(nil, es)
	if len(reports) != 2 || !strings.Contains(reports[1], "EndpointSlice ns/a-1") {
		t.Fatalf("reports %q", reports)
	}
	// The valid parts still work.
	c := tr.Checkout()
	if p := c.Snapshots[IPv4].Services[types.NamespacedName{Namespace: "ns", Name: "a"}].Ports[0]; len(p.Usable.Cluster) != 1 {
		t.Fatalf("valid endpoint lost: %+v", p)
	}
}

func TestTrackerSliceMovesBetweenServices(t *testing.T) {
	tr := newTestTracker(nil)
	tr.OnService(nil, svc("ns", "a", "10.96.0.1"))
	tr.OnService(nil, svc("ns", "b", "10.96.0.2"))
	es := slice("ns", "a", "s-1", epSpec{ip: "10.244.1.10"})
	tr.OnEndpointSlice(nil, es)
	tr.Checkout()
	moved := es.DeepCopy()
	moved.ResourceVersion = "2"
	moved.Labels[discovery.LabelServiceName] = "b"
	tr.OnEndpointSlice(es, moved)
	c := tr.Checkout()
	if got := changedNames(c, IPv4); got != "ns/a,ns/b" {
		t.Fatalf("changed = %q", got)
	}
	if eps := c.Snapshots[IPv4].Services[key("ns", "a")].Ports[0].Endpoints; len(eps) != 0 {
		t.Errorf("the old Service kept the moved slice's endpoints: %v", eps)
	}
	if eps := c.Snapshots[IPv4].Services[key("ns", "b")].Ports[0].Endpoints; len(eps) != 1 {
		t.Errorf("the new Service lacks the moved slice's endpoints: %v", eps)
	}
}

func TestTrackerSkippedServiceUpdatesAreNoOps(t *testing.T) {
	tr := newTestTracker(nil)
	h := svc("ns", "h", "None")
	tr.OnService(nil, h)
	h2 := h.DeepCopy()
	h2.ResourceVersion = "2"
	h2.Annotations = map[string]string{"x": "y"}
	tr.OnService(h, h2)
	if s, _ := tr.Pending(); s != 0 {
		t.Fatalf("a headless Service counted %d changes", s)
	}
}

func TestTrackerNodeLabelChangeWithoutTopologyIsNoOp(t *testing.T) {
	tr := newTestTracker(nil)
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "me", Labels: map[string]string{"a": "1"}}}
	tr.OnNode(node)
	tr.Checkout()
	node2 := node.DeepCopy()
	node2.Labels["a"] = "2"
	tr.OnNode(node2)
	if c := tr.Checkout(); c.NodeChanged {
		t.Fatal("a label kproxy does not use forced a full rebuild")
	}
}
