package userspace

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

func TestSrcMatchWithin(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, c := range []struct {
		m    srcMatch
		r    string
		want string // "" with ok=false: no source left
	}{
		{srcMatch{}, "192.0.2.0/24", " -s 192.0.2.0/24"},
		{srcMatch{local: true}, "192.0.2.0/24", " -m addrtype --src-type LOCAL -s 192.0.2.0/24"},
		{srcMatch{cidr: pfx("10.244.0.0/16")}, "10.244.1.10/32", " -s 10.244.1.10/32"},
		{srcMatch{cidr: pfx("10.244.0.0/16")}, "10.0.0.0/8", " -s 10.244.0.0/16"},
		{srcMatch{cidr: pfx("10.244.0.0/16")}, "192.0.2.0/24", ""},
	} {
		got, ok := c.m.within(pfx(c.r))
		if (c.want != "") != ok || (ok && got.String() != c.want) {
			t.Errorf("%q within %s = %q, %v; want %q", c.m, c.r, got, ok, c.want)
		}
	}
}

// ETP=Local without a local endpoint: pod and node sources are redirected
// to the LB IP only within loadBalancerSourceRanges.
func TestRenderRangesOnShortCircuit(t *testing.T) {
	b := newSnap(proxier.NodeInfo{Name: "node1"}).add(proxier.ServicePort{Name: spName("default", "lb", "", ""), ClusterIP: addr("10.96.0.13"), Port: 80,
		NodePort: 30013, LoadBalancerIPs: []netip.Addr{addr("10.96.201.13")}, ExternalPolicyLocal: true,
		SourceRanges: []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24")}, HasSourceRanges: true},
		ep("10.244.2.10", 8080, "node2"))
	o, _ := Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16"))}.normalized()
	specs, _ := plan(b.snap)
	ports := map[listenerKey]int{}
	for i, s := range specs {
		ports[s.Key] = 41000 + i
	}
	var lb []string
	for _, l := range strings.Split(renderRules(specs, ports, &b.snap.Node, &o).Text, "\n") {
		if strings.Contains(l, "-d 10.96.201.13/32") && strings.Contains(l, "REDIRECT") {
			lb = append(lb, l)
		}
	}
	want := []string{
		`-A KPROXY-US-SERVICES -m comment --comment "default/lb loadbalancer IP" -m addrtype --src-type LOCAL -s 10.244.1.0/24 -d 10.96.201.13/32 -p tcp --dport 80 -j REDIRECT --to-ports 41001`,
		`-A KPROXY-US-SERVICES -m comment --comment "default/lb loadbalancer IP" -s 10.244.1.0/24 -d 10.96.201.13/32 -p tcp --dport 80 -j REDIRECT --to-ports 41001`,
	}
	if strings.Join(lb, "\n") != strings.Join(want, "\n") {
		t.Errorf("LB IP redirects:\n%s\nwant:\n%s", strings.Join(lb, "\n"), strings.Join(want, "\n"))
	}
}

// The source-range exception comes from proxier.PortPolicy, as in every
// mode: with the node's address in a range, the LB IP itself is an allowed
// source (traffic from the node to a local LB IP loops back with it).
func TestPlanSourceRangeException(t *testing.T) {
	node := proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr("198.51.100.11")}}
	b := newSnap(node).add(proxier.ServicePort{Name: spName("default", "lb", "", ""), ClusterIP: addr("10.96.0.13"), Port: 80,
		LoadBalancerIPs: []netip.Addr{addr("10.96.201.13")},
		SourceRanges:    []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, HasSourceRanges: true},
		ep("10.244.2.10", 8080, "node2"))
	s := specFor(t, b, "default", "lb", external)
	if got := fmt.Sprint(s.SourceRanges); !s.RangesSet || got != "[198.51.100.0/24 10.96.201.13/32]" {
		t.Errorf("allowed sources %s (set %v)", got, s.RangesSet)
	}
}
