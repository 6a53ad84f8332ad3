package iptables

import (
	"github.com/kproxy/kproxy/internal/xtables"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// newKernelRigIPv6 is newKernelRig over IPv6: a dual-stack topology and a
// Proxier programming node1 through the real ip6tables-restore.
func newKernelRigIPv6(t *testing.T) *kernelRig {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo, _ := flowtest.NewKernelTopologyIPv6(t)
	k, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv6, Netns: topo.Node(1).Netns})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{
		Family:        proxier.IPv6,
		Kernel:        k,
		LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDRv6)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &kernelRig{topo: topo, kernel: k, p: p, probe: flowtest.KernelProber{Topo: topo.IPv6View()}}
}

// TestKernelFlowTableIPv6 runs the shared flow table, mapped to IPv6, with
// real IPv6 TCP and UDP packets through ip6tables-restore: ClusterIP from
// pods and from the node, NodePort from the outside client, masquerading
// (the source each echo server saw), rejects as ICMPv6 unreachables,
// traffic policies, externalIPs and load balancers. Each chain reads back
// as rendered.
func TestKernelFlowTableIPv6(t *testing.T) {
	r := newKernelRigIPv6(t)
	r.probe.RunScenariosIPv6(t, func(t *testing.T, sc *flowtest.Scenario) {
		r.sync(t, sc.SnapshotIPv6(), nil, true)
		r.checkReadBack(t)
	})
	t.Run("reject is an ICMPv6 port unreachable", func(t *testing.T) { testRejectICMPv6(t, r) })
}

// testRejectICMPv6: a NodePort without endpoints refuses the outside
// client with an ICMPv6 port unreachable from the node (not a TCP reset).
func testRejectICMPv6(t *testing.T, r *kernelRig) {
	sc := flowtest.ScenariosIPv6()[1]
	i := slices.IndexFunc(sc.Cases, func(c flowtest.Case) bool { return c.Dest == flowtest.ToNodePort && c.Want == flowtest.Reject })
	if sc.Name != "no-endpoints" || i < 0 {
		t.Fatalf("scenario %s has no rejected NodePort case", sc.Name)
	}
	r.sync(t, sc.SnapshotIPv6(), nil, true)
	pk, err := sc.PacketIPv6(&sc.Cases[i])
	if err != nil {
		t.Fatal(err)
	}
	_, err = testrig.ProbeTCP(r.topo.Client, netip.AddrPortFrom(pk.Dst, uint16(pk.DstPort)).String(), 2*time.Second)
	pe, _ := err.(*testrig.ProbeError)
	node := r.topo.Node(1).IPv6
	if pe == nil || pe.Outcome != testrig.Refused || pe.ICMP == nil || !pe.ICMP.IPv6 || !pe.ICMP.PortUnreachable() || pe.ICMP.From != node {
		t.Errorf("%s: %v, want refused by an ICMPv6 port unreachable from %s", pk, err, node)
	}
}
