package flowtest

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

// TestScenariosIPv6 checks the mapping: the IPv6 table has the IPv4 table's
// shape, no IPv4 address is left where traffic goes, and every Service of a
// scenario reaches the IPv6 snapshot.
func TestScenariosIPv6(t *testing.T) {
	v4, v6 := Scenarios(), ScenariosIPv6()
	if len(v4) != len(v6) {
		t.Fatalf("%d IPv6 scenarios, want %d", len(v6), len(v4))
	}
	for i, sc := range v6 {
		if sc.Name != v4[i].Name || len(sc.Cases) != len(v4[i].Cases) || len(sc.Services) != len(v4[i].Services) {
			t.Errorf("%s: shape differs from the IPv4 scenario", sc.Name)
		}
		snap := sc.SnapshotIPv6()
		if snap.Family != proxier.IPv6 || len(snap.Services) != len(sc.Services) {
			t.Errorf("%s: snapshot %s has %d Services, want %d", sc.Name, snap.Family, len(snap.Services), len(sc.Services))
		}
		for _, c := range sc.Cases {
			pk, err := sc.PacketIPv6(&c)
			if err != nil {
				t.Fatal(err)
			}
			if !pk.Src.Is6() || !pk.Dst.Is6() {
				t.Errorf("%s/%s: packet %s is not IPv6", sc.Name, c.Name, pk)
			}
			for _, e := range c.Endpoints {
				if ap, err := netip.ParseAddrPort(e); err != nil || !ap.Addr().Is6() {
					t.Errorf("%s/%s: endpoint %q is not IPv6", sc.Name, c.Name, e)
				}
			}
		}
	}
	i := slices.IndexFunc(v6, func(sc Scenario) bool { return sc.Name == "loadbalancer" })
	if i < 0 {
		t.Fatal("no loadbalancer scenario")
	}
	lb := v6[i].Services
	if got := lb[1].Spec.LoadBalancerSourceRanges[0]; got != "fd00:198:51:100::100/128" {
		t.Errorf("client source range maps to %s", got)
	}
	if got := lb[3].Spec.LoadBalancerSourceRanges[0]; got != otherFamilyRange {
		t.Errorf("an IPv6 range of the IPv4 table maps to %s, want the other family", got)
	}
}
