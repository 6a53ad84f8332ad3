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

func TestKernelFlowTable(t *testing.T) { testKernelFlowTable(t, flowIPv4) }

// TestKernelFlowTableIPv6 is the table mapped to IPv6, with real IPv6
// packets through a dual-stack topology: an IPv6 Proxier (IPv6 virtual
// servers, KUBE-6- ipsets, ip6tables rules, IPv6 addresses on kube-ipvs0)
// with the same deviations from the table as over IPv4.
func TestKernelFlowTableIPv6(t *testing.T) { testKernelFlowTable(t, flowIPv6) }

func testKernelFlowTable(t *testing.T, ff flowFamily) {
	requireVM(t)
	testrig.RequireRoot(t)
	topo, _ := ff.topology(t)
	ns := topo.Node(1).Netns
	opts := flowOptions(ff.family)
	opts.Kernel = NewKernel(ff.family, "/run/netns/"+ns)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup(context.Background()) })
	if ff.family == proxier.IPv6 {
		topo = topo.IPv6View() // the prober finds pods by their IPv6 addresses
	}
	prober := &flowtest.KernelProber{
		Topo:      topo,
		SlowRetry: true, // the VM is emulated (TCG)
		Dump:      func(t *testing.T) { dumpDatapath(t, ns, ff.family) },
		Cases:     flowCases,
	}
	ff.run(prober, t, func(t *testing.T, sc *flowtest.Scenario) {
		if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: ff.snapshot(sc), Full: true}); err != nil {
			t.Fatalf("%s: sync: %v", sc.Name, err)
		}
	})
}

// dumpDatapath logs what node1's datapath holds for a family, with -v.
func dumpDatapath(t *testing.T, ns string, f proxier.Family) {
	if !testing.Verbose() {
		return
	}
	save := "iptables-save"
	if f == proxier.IPv6 {
		save = "ip6tables-save"
	}
	for _, cmd := range [][]string{{save, "-c"}, {"ipset", "list", "-t"}, {"cat", "/proc/net/ip_vs"}, {"ip", "-br", "addr"}} {
		out, _ := testrig.Exec(ns, cmd...)
		t.Logf("%v:\n%s", cmd, out)
	}
}
