package ipvs

// The shared packet-flow table with real packets, inside the IPVS VM:
// every scenario is synced (full) into node1's namespace of a 2-node
// topology and every case is probed from its source's namespace.

import (
	"context"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

func TestKernelFlowTable(t *testing.T) {
	requireVM(t)
	testrig.RequireRoot(t)
	topo, _ := flowtest.NewKernelTopology(t)
	opts := flowOptions()
	opts.Kernel = NewKernel(proxier.IPv4, "/run/netns/"+topo.Node(1).Netns)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup(context.Background()) })
	prober := flowtest.KernelProber{
		Topo:      topo,
		SlowRetry: true, // the VM is emulated (TCG)
		Dump:      func(t *testing.T) { dumpDatapath(t, topo.Node(1).Netns) },
		Cases:     flowCases,
	}
	prober.RunScenarios(t, func(t *testing.T, sc *flowtest.Scenario) {
		if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: sc.Snapshot(), Full: true}); err != nil {
			t.Fatalf("%s: sync: %v", sc.Name, err)
		}
	})
}

// dumpDatapath logs what node1's datapath holds, with -v.
func dumpDatapath(t *testing.T, ns string) {
	if !testing.Verbose() {
		return
	}
	for _, cmd := range [][]string{{"iptables-save", "-c"}, {"ipset", "list", "-t"}, {"cat", "/proc/net/ip_vs"}, {"ip", "-br", "addr"}} {
		out, _ := testrig.Exec(ns, cmd...)
		t.Logf("%v:\n%s", cmd, out)
	}
}
