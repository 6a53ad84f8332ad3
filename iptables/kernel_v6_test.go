package iptables

import (
	"net/netip"
	"testing"

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
	k, err := NewExecKernel(ExecConfig{Family: proxier.IPv6, Netns: topo.Node(1).Netns})
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
}
