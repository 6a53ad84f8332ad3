package userspacebench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/proxier"
	"github.com/kproxy/kproxy/userspace"
)

// envProxy, when set, turns the test binary into the proxy process: it
// serves the benchmark's Services in its own namespace until SIGTERM,
// then removes its rules.
const envProxy = "KPROXY_US_BENCH_PROXY"

// benchServices: ClusterIP → endpoint (both on node1).
var benchServices = []struct {
	name      string
	clusterIP string
	port      int32
	endpoint  string
}{
	{"bulk", "10.96.0.100", 9000, serverIP + ":9000"},
	{"echo", "10.96.0.101", 9001, serverIP + ":9001"},
}

func benchSnapshot() *proxier.Snapshot {
	node := proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{netip.MustParseAddr("198.51.100.11")}}
	snap := &proxier.Snapshot{Family: proxier.IPv4, Node: node, Services: map[types.NamespacedName]*proxier.Service{}}
	for _, s := range benchServices {
		name := types.NamespacedName{Namespace: "bench", Name: s.name}
		ap := netip.MustParseAddrPort(s.endpoint)
		sp := proxier.ServicePort{Name: proxier.ServicePortName{NamespacedName: name, Protocol: v1.ProtocolTCP},
			ClusterIP: netip.MustParseAddr(s.clusterIP), Port: s.port, Protocol: v1.ProtocolTCP}
		eps := []proxier.Endpoint{{IP: ap.Addr(), Port: int32(ap.Port()), Ready: true, Serving: true, NodeName: "node1", Local: true}}
		snap.Services[name] = &proxier.Service{Name: name, Ports: []proxier.Port{{ServicePort: sp, Endpoints: eps, Usable: proxier.CategorizeEndpoints(&sp, eps, &node)}}}
	}
	return snap
}

// runProxy is the proxy process's main.
func runProxy() int {
	opts := userspace.Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16"))}
	if ts := tunedFromEnv(); ts != nil {
		opts.Sockets = ts
	}
	p, err := userspace.New(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go p.Run(ctx) // the idle-connection sweeper, as the daemon's loop runs it
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: benchSnapshot(), Full: true}); err != nil {
		fmt.Fprintln(os.Stderr, "sync:", err)
		_ = p.Cleanup(ctx)
		return 1
	}
	fmt.Println(readyLine, p.Listeners())
	<-sig
	if err := p.Cleanup(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		return 1
	}
	return 0
}
