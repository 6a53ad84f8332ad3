package ipvs

import (
	"net/netip"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// flowOptions are the options the shared flow table is written for.
func flowOptions() Options {
	return Options{LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR))}
}

// ipvsDeviations are the flow-table cases where upstream kube-proxy's ipvs
// mode, which this mode follows, differs from the table (written for the
// iptables semantics). An IPVS virtual server cannot tell sources apart:
// the one on an externalTrafficPolicy=Local address holds the local
// endpoints, for every source, and falls back to the Cluster endpoints
// only when there is no local one (kubernetes#97081). Node traffic to a
// Local-policy address is not masqueraded (KUBE-NODE-PORT-LOCAL).
var ipvsDeviations = map[string]func(c *flowtest.Case){
	"ETP Local pod traffic short-circuits to all endpoints": func(c *flowtest.Case) {
		c.Endpoints = []string{"10.244.1.11:8080"}
	},
	"ETP Local node traffic is masqueraded to all endpoints": func(c *flowtest.Case) {
		c.Endpoints, c.Masquerade = []string{"10.244.1.11:8080"}, false
	},
}

// flowCases returns a scenario's cases with ipvs mode's deviations.
func flowCases(sc *flowtest.Scenario) []flowtest.Case {
	var out []flowtest.Case
	for _, c := range sc.Cases {
		if dev := ipvsDeviations[c.Name]; dev != nil {
			dev(&c)
		}
		out = append(out, c)
	}
	return out
}

// TestFlowTable runs the shared packet-flow table against the desired
// State (virtual servers, real servers, sets, rules) through the tracer,
// with local traffic detected by the cluster CIDR and by the interface
// the table's local pods come in on (veth0): the outcomes are the same.
func TestFlowTable(t *testing.T) {
	byPrefix := flowOptions()
	byPrefix.LocalDetector = proxier.DetectLocalByInterfacePrefix("veth")
	t.Run("cluster-cidr", func(t *testing.T) { testFlowTable(t, flowOptions()) })
	t.Run("interface-prefix", func(t *testing.T) { testFlowTable(t, byPrefix) })
}

func testFlowTable(t *testing.T, fo Options) {
	seen := 0
	for _, sc := range flowtest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			opts, err := fo.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			node := []netip.Addr{netip.MustParseAddr(flowtest.ThisNodeIP)}
			snap := sc.Snapshot()
			s := newDesired(snap, &opts, nodePortAddresses(&opts, &snap.Node, node)).s
			tr := newTracer(t, s, snap.Family, node)
			for _, c := range flowCases(&sc) {
				if ipvsDeviations[c.Name] != nil {
					seen++
				}
				pk, err := sc.Packet(&c)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.CheckAll(tr.trace(pk)); err != nil {
					t.Errorf("%s (%s): %v", c.Name, pk, err)
				}
			}
		})
	}
	if seen != len(ipvsDeviations) {
		t.Errorf("%d of %d deviations name a case of the table", seen, len(ipvsDeviations))
	}
}
