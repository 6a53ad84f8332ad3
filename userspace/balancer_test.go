package userspace

import (
	"net/netip"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kproxy/kproxy/proxier"
)

func specFor(t *testing.T, b *svcBuilder, ns, name string, c class) *listenerSpec {
	t.Helper()
	specs, _ := plan(b.snap)
	for i := range specs {
		if specs[i].Key.Name.Namespace == ns && specs[i].Key.Name.Name == name && specs[i].Key.Class == c {
			return &specs[i]
		}
	}
	t.Fatalf("no %s listener for %s/%s", c, ns, name)
	return nil
}

func firstChoice(b *balancer, client string, src *sourceClassifier, aff *affinityTable, now time.Time) netip.AddrPort {
	var buf [8]*backend
	o := b.order(buf[:], addr(client), src, aff, now)
	if len(o) == 0 {
		return netip.AddrPort{}
	}
	return o[0].addr
}

func TestRoundRobinIsExact(t *testing.T) {
	bal := newBalancer(specFor(t, richSnapshot(), "default", "web", internal), map[netip.AddrPort]*backend{})
	src := &sourceClassifier{}
	counts := map[netip.AddrPort]int{}
	now := time.Unix(1000, 0)
	for i := 0; i < 300; i++ {
		counts[firstChoice(bal, "10.244.1.10", src, &affinityTable{}, now)]++
	}
	if len(counts) != 3 {
		t.Fatalf("want 3 endpoints used, got %v", counts)
	}
	for a, n := range counts {
		if n != 100 {
			t.Errorf("endpoint %s got %d of 300 connections, want exactly 100", a, n)
		}
	}
}

func TestOrderTriesEveryEndpointFailedOnesLast(t *testing.T) {
	bal := newBalancer(specFor(t, richSnapshot(), "default", "web", internal), map[netip.AddrPort]*backend{})
	now := time.Unix(1000, 0)
	bal.cluster[0].heldUntil.Store(now.Add(time.Second).UnixNano())
	for i := 0; i < 6; i++ {
		var buf [8]*backend
		o := bal.order(buf[:], addr("10.244.1.10"), &sourceClassifier{}, &affinityTable{}, now)
		if len(o) != 3 {
			t.Fatalf("order has %d endpoints, want all 3", len(o))
		}
		if o[0] == bal.cluster[0] || o[2] != bal.cluster[0] {
			t.Errorf("try %d: the failed endpoint %s must come last, got %s,%s,%s", i, bal.cluster[0].addr, o[0].addr, o[1].addr, o[2].addr)
		}
	}
	// Once the hold expires it is used again.
	later := now.Add(2 * time.Second)
	seen := map[netip.AddrPort]bool{}
	for i := 0; i < 3; i++ {
		seen[firstChoice(bal, "10.244.1.10", &sourceClassifier{}, &affinityTable{}, later)] = true
	}
	if !seen[bal.cluster[0].addr] {
		t.Errorf("endpoint not used again after its hold: %v", seen)
	}
}

func TestAffinityBindsClientUntilTimeout(t *testing.T) {
	clk := testclock.NewFakePassiveClock(time.Unix(1000, 0))
	spec := specFor(t, richSnapshot(), "edge", "lb", internal)
	bal := newBalancer(spec, map[netip.AddrPort]*backend{})
	aff := &affinityTable{}
	src := &sourceClassifier{}
	first := firstChoice(bal, "10.244.1.10", src, aff, clk.Now())
	aff.put(addr("10.244.1.10"), first, clk.Now().Add(bal.affinity)) // what a successful dial records
	for i := 0; i < 10; i++ {
		if got := firstChoice(bal, "10.244.1.10", src, aff, clk.Now()); got != first {
			t.Fatalf("connection %d went to %s, affinity says %s", i, got, first)
		}
	}
	// Another client is balanced independently of the first one's affinity.
	other := map[netip.AddrPort]bool{}
	for i := 0; i < 4; i++ {
		other[firstChoice(bal, "10.244.1.11", src, aff, clk.Now())] = true
	}
	if len(other) != 2 {
		t.Errorf("a client without affinity should be balanced over both endpoints, got %v", other)
	}
	clk.SetTime(clk.Now().Add(601 * time.Second))
	if _, ok := aff.get(addr("10.244.1.10"), clk.Now()); ok {
		t.Error("affinity survived its 600s timeout")
	}
	aff.prune(clk.Now())
	if len(aff.m) != 0 {
		t.Errorf("prune left %d expired entries", len(aff.m))
	}
}

// externalTrafficPolicy=Local: outside clients get the local endpoint only,
// pods and the node itself get the Cluster endpoints (kube-proxy's
// short-circuit), which a redirect allows because the proxy sees the source.
func TestExternalLocalPolicyDependsOnSource(t *testing.T) {
	b := richSnapshot()
	bal := newBalancer(specFor(t, b, "edge", "lb", external), map[netip.AddrPort]*backend{})
	src := &sourceClassifier{cidrs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, nodeIPs: b.snap.Node.IPs}
	now := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		if got := firstChoice(bal, "198.51.100.100", src, &affinityTable{}, now); got.String() != "10.244.1.11:8443" {
			t.Fatalf("outside client sent to %s, want the local endpoint only", got)
		}
	}
	for _, client := range []string{"10.244.2.10", "198.51.100.11", "127.0.0.1"} {
		seen := map[string]bool{}
		for i := 0; i < 4; i++ {
			seen[firstChoice(bal, client, src, &affinityTable{}, now).String()] = true
		}
		if len(seen) != 2 {
			t.Errorf("in-cluster client %s should use both cluster endpoints, got %v", client, seen)
		}
	}
}

func TestInternalLocalPolicyWithoutLocalEndpoint(t *testing.T) {
	node := proxier.NodeInfo{Name: "node1"}
	b := newSnap(node).add(proxier.ServicePort{Name: spName("default", "itp", "", ""), ClusterIP: addr("10.96.0.40"), Port: 80, InternalPolicyLocal: true},
		ep("10.244.2.10", 8080, "node2"))
	spec := specFor(t, b, "default", "itp", internal)
	if spec.Reject {
		t.Fatal("a Service with endpoints elsewhere must not be rejected (traffic with no local endpoint is dropped, not rejected)")
	}
	bal := newBalancer(spec, map[netip.AddrPort]*backend{})
	var buf [8]*backend
	if o := bal.order(buf[:], addr("10.244.1.10"), &sourceClassifier{}, &affinityTable{}, time.Unix(0, 0)); len(o) != 0 {
		t.Errorf("ITP=Local with no local endpoint chose %v", o[0].addr)
	}
}

// Both policies Local and no local endpoint: the ClusterIP drops
// everything, the external destinations drop outside clients, and pods and
// the node reaching an external destination use Port.Usable.Cluster (every
// externally reachable port has Cluster endpoints, for the short-circuit).
func TestBothPoliciesLocalShortCircuitUsesCluster(t *testing.T) {
	node := proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr("198.51.100.11")}}
	b := newSnap(node).add(proxier.ServicePort{Name: spName("default", "both", "", ""), ClusterIP: addr("10.96.0.41"), Port: 80, NodePort: 30041,
		InternalPolicyLocal: true, ExternalPolicyLocal: true},
		ep("10.244.2.10", 8080, "node2"), ep("10.244.2.11", 8080, "node2"))
	in, ext := specFor(t, b, "default", "both", internal), specFor(t, b, "default", "both", external)
	if in.Drop != dropAll || ext.Drop != dropOutside || in.Reject || ext.Reject {
		t.Fatalf("drop modes internal=%v external=%v (reject %v/%v), want dropAll/dropOutside", in.Drop, ext.Drop, in.Reject, ext.Reject)
	}
	bal := newBalancer(ext, map[netip.AddrPort]*backend{})
	src := &sourceClassifier{cidrs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, nodeIPs: node.IPs}
	now := time.Unix(1000, 0)
	for _, client := range []string{"10.244.1.10", "198.51.100.11"} {
		seen := map[string]bool{}
		for range 4 {
			seen[firstChoice(bal, client, src, &affinityTable{}, now).String()] = true
		}
		if len(seen) != 2 || seen["invalid AddrPort"] {
			t.Errorf("client %s on an external destination used %v, want both Cluster endpoints", client, seen)
		}
	}
	if got := firstChoice(bal, "198.51.100.100", src, &affinityTable{}, now); got.IsValid() {
		t.Errorf("outside client got %s, want no endpoint", got)
	}
}
