package proxier

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCategorizeEndpoints(t *testing.T) {
	ep := func(ip string, local, ready, serving, terminating bool, zones ...string) Endpoint {
		return Endpoint{IP: netip.MustParseAddr(ip), Port: 80, Local: local, Ready: ready, Serving: serving, Terminating: terminating, ZoneHints: zones}
	}
	cluster := ServicePort{}
	itpLocal := ServicePort{InternalPolicyLocal: true}
	etpLocal := ServicePort{NodePort: 30000, ExternalPolicyLocal: true}
	node := &NodeInfo{Name: "me", Zone: "z1"}
	tests := []struct {
		name                      string
		port                      ServicePort
		eps                       []Endpoint
		cluster, local, reachable string
		hasAny                    bool
	}{
		{name: "ready only", port: cluster, hasAny: true,
			eps:     []Endpoint{ep("10.0.0.1", false, true, true, false), ep("10.0.0.2", false, false, false, false), ep("10.0.0.3", false, false, true, true)},
			cluster: "10.0.0.1:80", reachable: "10.0.0.1:80"},
		{name: "terminating fallback", port: cluster, hasAny: true,
			eps:     []Endpoint{ep("10.0.0.2", false, false, false, true), ep("10.0.0.3", false, false, true, true)},
			cluster: "10.0.0.3:80", reachable: "10.0.0.3:80"},
		{name: "nothing usable", port: cluster,
			eps: []Endpoint{ep("10.0.0.2", false, false, false, true)}},
		{name: "itp local", port: itpLocal, hasAny: true,
			eps:   []Endpoint{ep("10.0.0.1", false, true, true, false), ep("10.0.0.2", true, true, true, false)},
			local: "10.0.0.2:80", reachable: "10.0.0.2:80"},
		{name: "itp local without local endpoints still has endpoints", port: itpLocal, hasAny: true,
			eps: []Endpoint{ep("10.0.0.1", false, true, true, false)}},
		{name: "itp local terminating fallback is per policy", port: itpLocal, hasAny: true,
			eps:   []Endpoint{ep("10.0.0.1", false, true, true, false), ep("10.0.0.2", true, false, true, true)},
			local: "10.0.0.2:80", reachable: "10.0.0.2:80"},
		{name: "etp local merges cluster and local", port: etpLocal, hasAny: true,
			eps:     []Endpoint{ep("10.0.0.1", false, true, true, false), ep("10.0.0.2", true, false, true, true)},
			cluster: "10.0.0.1:80", local: "10.0.0.2:80", reachable: "10.0.0.1:80,10.0.0.2:80"},
		{name: "zone hints", port: cluster, hasAny: true,
			eps:     []Endpoint{ep("10.0.0.1", false, true, true, false, "z1"), ep("10.0.0.2", false, true, true, false, "z2")},
			cluster: "10.0.0.1:80", reachable: "10.0.0.1:80"},
		{name: "zone hints ignored when one endpoint lacks them", port: cluster, hasAny: true,
			eps:     []Endpoint{ep("10.0.0.1", false, true, true, false, "z1"), ep("10.0.0.2", false, true, true, false)},
			cluster: "10.0.0.1:80,10.0.0.2:80", reachable: "10.0.0.1:80,10.0.0.2:80"},
		{name: "zone hints ignored when none is for our zone", port: cluster, hasAny: true,
			eps:     []Endpoint{ep("10.0.0.1", false, true, true, false, "z3"), ep("10.0.0.2", false, true, true, false, "z2")},
			cluster: "10.0.0.1:80,10.0.0.2:80", reachable: "10.0.0.1:80,10.0.0.2:80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := CategorizeEndpoints(&tc.port, tc.eps, node)
			j := func(e []Endpoint) string { return strings.Join(endpointStrings(e), ",") }
			if j(u.Cluster) != tc.cluster || j(u.Local) != tc.local || j(u.AllReachable) != tc.reachable || u.HasAny != tc.hasAny {
				t.Errorf("got cluster=%q local=%q reachable=%q hasAny=%v", j(u.Cluster), j(u.Local), j(u.AllReachable), u.HasAny)
			}
		})
	}
}

func TestNodeHintsPreferSameNode(t *testing.T) {
	eps := []Endpoint{
		{IP: netip.MustParseAddr("10.0.0.1"), Port: 80, Ready: true, NodeHints: []string{"me"}, ZoneHints: []string{"z1"}},
		{IP: netip.MustParseAddr("10.0.0.2"), Port: 80, Ready: true, NodeHints: []string{"other"}, ZoneHints: []string{"z1"}},
	}
	u := CategorizeEndpoints(&ServicePort{}, eps, &NodeInfo{Name: "me", Zone: "z1"})
	if got := strings.Join(endpointStrings(u.Cluster), ","); got != "10.0.0.1:80" {
		t.Fatalf("cluster = %s", got)
	}
}
