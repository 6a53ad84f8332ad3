package ipvs

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// flowOptions are the options the shared flow table is written for, in
// either family (the detector keeps the family's cluster CIDR).
func flowOptions(f proxier.Family) Options {
	return Options{Family: f, LocalDetector: proxier.DetectLocalByCIDR(
		netip.MustParsePrefix(flowtest.ClusterCIDR), netip.MustParsePrefix(flowtest.ClusterCIDRv6))}
}

// thisNodePods are node1's pod CIDRs in the IPv4 table and its IPv6 map.
var thisNodePods = []netip.Prefix{
	netip.MustParsePrefix("10.244.1.0/24"),
	netip.MustParsePrefix(testrig.IPv6("10.244.1.0") + "/64"),
}

// localOnly keeps the endpoints on this node: what a virtual server of an
// externalTrafficPolicy=Local address holds when there is one.
func localOnly(eps []string) []string {
	return slices.DeleteFunc(slices.Clone(eps), func(e string) bool {
		a := netip.MustParseAddrPort(e).Addr()
		return !slices.ContainsFunc(thisNodePods, func(p netip.Prefix) bool { return p.Contains(a) })
	})
}

// ipvsDeviations are the flow-table cases where upstream kube-proxy's ipvs
// mode, which this mode follows, differs from the table (written for the
// iptables semantics), in both families. An IPVS virtual server cannot
// tell sources apart: the one on an externalTrafficPolicy=Local address
// holds the local endpoints, for every source, and falls back to the
// Cluster endpoints only when there is no local one (kubernetes#97081).
// Node traffic to a Local-policy address is not masqueraded
// (KUBE-NODE-PORT-LOCAL).
var ipvsDeviations = map[string]func(c *flowtest.Case){
	"ETP Local pod traffic short-circuits to all endpoints": func(c *flowtest.Case) {
		c.Endpoints = localOnly(c.Endpoints)
	},
	"ETP Local node traffic is masqueraded to all endpoints": func(c *flowtest.Case) {
		c.Endpoints, c.Masquerade = localOnly(c.Endpoints), false
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

// flowFamily is how the shared table reads in one family, as a pure
// table and over a kernel topology.
type flowFamily struct {
	family    proxier.Family
	scenarios func() []flowtest.Scenario
	inFamily  func(flowtest.Scenario) flowtest.Scenario // maps a scenario written for IPv4
	snapshot  func(*flowtest.Scenario) *proxier.Snapshot
	packet    func(*flowtest.Scenario, *flowtest.Case) (flowtest.Packet, error)
	nodeIP    string
	topology  func(*testing.T) (*testrig.Topology, map[string]*testrig.EchoServers)
	run       func(*flowtest.KernelProber, *testing.T, func(*testing.T, *flowtest.Scenario))
}

var flowIPv4 = flowFamily{
	family: proxier.IPv4, scenarios: flowtest.Scenarios, snapshot: (*flowtest.Scenario).Snapshot,
	packet: (*flowtest.Scenario).Packet, nodeIP: flowtest.ThisNodeIP,
	inFamily: func(sc flowtest.Scenario) flowtest.Scenario { return sc },
	topology: flowtest.NewKernelTopology, run: (*flowtest.KernelProber).RunScenarios,
}

var flowIPv6 = flowFamily{
	family: proxier.IPv6, scenarios: flowtest.ScenariosIPv6, snapshot: (*flowtest.Scenario).SnapshotIPv6,
	packet: (*flowtest.Scenario).PacketIPv6, nodeIP: testrig.IPv6(flowtest.ThisNodeIP),
	inFamily: flowtest.ScenarioIPv6,
	topology: flowtest.NewKernelTopologyIPv6, run: (*flowtest.KernelProber).RunScenariosIPv6,
}

// TestFlowTable runs the shared packet-flow table, in both families,
// against the desired State (virtual servers, real servers, sets, rules)
// through the tracer, with local traffic detected by the cluster CIDR and
// by the interface the table's local pods come in on (veth0): the
// outcomes are the same, except for the other node's pods
// (flowtest.RemotePodScenario), which only the cluster CIDR counts as
// local.
func TestFlowTable(t *testing.T) {
	for _, ff := range []flowFamily{flowIPv4, flowIPv6} {
		byPrefix := flowOptions(ff.family)
		byPrefix.LocalDetector = proxier.DetectLocalByInterfacePrefix("veth")
		t.Run(string(ff.family)+"/cluster-cidr", func(t *testing.T) { testFlowTable(t, ff, flowOptions(ff.family), true) })
		t.Run(string(ff.family)+"/interface-prefix", func(t *testing.T) { testFlowTable(t, ff, byPrefix, false) })
	}
}

func testFlowTable(t *testing.T, ff flowFamily, fo Options, remoteLocal bool) {
	seen := 0
	for _, sc := range append(ff.scenarios(), ff.inFamily(flowtest.RemotePodScenario(remoteLocal))) {
		t.Run(sc.Name, func(t *testing.T) {
			opts, err := fo.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			node := []netip.Addr{netip.MustParseAddr(ff.nodeIP)}
			snap := ff.snapshot(&sc)
			s := newDesired(snap, &opts, nodePortAddresses(&opts, &snap.Node, node)).s
			tr := newTracer(t, s, snap.Family, node)
			for _, c := range flowCases(&sc) {
				if ipvsDeviations[c.Name] != nil {
					seen++
				}
				pk, err := ff.packet(&sc, &c)
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
