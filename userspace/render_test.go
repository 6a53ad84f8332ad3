package userspace

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// richSnapshot has one of each kind of service port this mode handles.
func richSnapshot() *svcBuilder {
	node := proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr("198.51.100.11")}}
	return newSnap(node).
		add(proxier.ServicePort{Name: spName("default", "web", "http", ""), ClusterIP: addr("10.96.0.10"), Port: 80},
			ep("10.244.1.10", 8080, "node1"), ep("10.244.2.10", 8080, "node2"), ep("10.244.2.11", 8080, "node2")).
		add(proxier.ServicePort{Name: spName("default", "dns", "dns", ""), ClusterIP: addr("10.96.0.53"), Port: 53, Protocol: v1.ProtocolUDP},
			ep("10.244.2.10", 5353, "node2")).
		add(proxier.ServicePort{Name: spName("default", "empty", "", ""), ClusterIP: addr("10.96.0.20"), Port: 80, NodePort: 30020}).
		add(proxier.ServicePort{Name: spName("edge", "lb", "https", ""), ClusterIP: addr("10.96.1.1"), Port: 443, NodePort: 30443,
			ExternalIPs: []netip.Addr{addr("203.0.113.7")}, LoadBalancerIPs: []netip.Addr{addr("203.0.113.100")},
			SourceRanges: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, HasSourceRanges: true,
			ExternalPolicyLocal: true, AffinityTimeout: 600},
			ep("10.244.1.11", 8443, "node1"), ep("10.244.2.12", 8443, "node2")).
		add(proxier.ServicePort{Name: spName("default", "sctp", "", ""), ClusterIP: addr("10.96.0.30"), Port: 9, Protocol: v1.ProtocolSCTP},
			ep("10.244.2.10", 9, "node2"))
}

func TestRenderGolden(t *testing.T) {
	out, err := Render(richSnapshot().snap, Options{Family: proxier.IPv4})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "render.golden", out)
}

func TestRenderNodePortAddresses(t *testing.T) {
	out, err := Render(richSnapshot().snap, Options{Family: proxier.IPv4, NodePortAddresses: []string{"primary", "10.0.0.0/8", "2001:db8::/64"}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "render-nodeport-addresses.golden", out)
}

func TestRenderRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{}, {Family: proxier.IPv4, NodePortAddresses: []string{"nonsense"}}, {Family: proxier.IPv4, DrainTimeout: -1}} {
		if _, err := Render(richSnapshot().snap, o); err == nil {
			t.Errorf("Render with %+v: no error", o)
		}
	}
}

// The rendered rules are accepted by a kernel-like fake, and our chains are
// the only ones they touch.
func TestRulesRestoreIntoFake(t *testing.T) {
	b := richSnapshot()
	o, _ := Options{Family: proxier.IPv4}.normalized()
	specs, _ := plan(b.snap)
	ports := map[listenerKey]int{}
	for i, s := range specs {
		ports[s.Key] = 41000 + i
	}
	rs := renderRules(specs, ports, &b.snap.Node, &o)
	f := NewFake()
	if err := f.Restore(t.Context(), []byte(rs.Text), false); err != nil {
		t.Fatal(err)
	}
	if got := len(f.Chain("nat", chainServices)) + len(f.Chain("nat", chainNodePorts)); got != rs.Counts["nat"] {
		t.Errorf("nat rules in kernel %d, counted %d", got, rs.Counts["nat"])
	}
	if got := len(f.Chain("filter", chainFilter)); got != rs.Counts["filter"] || got != 5 {
		t.Errorf("filter rules in kernel %d, counted %d, want 5 (reject ClusterIP and node port of default/empty, drop blocked LB sources, guard TCP and UDP proxy ports)", got, rs.Counts["filter"])
	}
}
