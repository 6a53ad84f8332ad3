package userspace

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelFlowTableIPv6 runs the shared flow table, mapped to IPv6, with
// real IPv6 TCP and UDP packets through an IPv6 Proxier serving node1 (its
// listeners and dials in node1's namespace, its redirects written with
// ip6tables-restore). As over IPv4, endpoints see the node's address.
func TestKernelFlowTableIPv6(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo, _ := flowtest.NewKernelTopologyIPv6(t)
	n1 := topo.Node(1).Netns
	p, err := New(Options{
		Family:        proxier.IPv6,
		LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDRv6)),
		Kernel:        netnsRunner(t, proxier.IPv6, n1),
		Sockets:       netnsSockets{ns: n1},
		Registerer:    prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if out := testrig.Run(t, n1, "ip6tables-save"); strings.Contains(out, "KPROXY-US") {
			t.Errorf("cleanup left rules behind:\n%s", out)
		}
	})
	prober := flowtest.KernelProber{Topo: topo.IPv6View(), EndpointSeesNode: true}
	prober.RunScenariosIPv6(t, func(t *testing.T, sc *flowtest.Scenario) {
		if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: sc.SnapshotIPv6(), Full: true}); err != nil {
			t.Fatalf("sync: %v", err)
		}
	})
}
