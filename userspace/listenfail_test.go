package userspace

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// flakySockets fails ListenTCP while fail is set (like a busy port or
// EMFILE).
type flakySockets struct {
	Sockets
	mu   sync.Mutex
	fail bool
}

func (s *flakySockets) setFail(v bool) { s.mu.Lock(); s.fail = v; s.mu.Unlock() }

func (s *flakySockets) ListenTCP(network string, a netip.AddrPort) (*net.TCPListener, error) {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail {
		return nil, errors.New("injected: address already in use")
	}
	return s.Sockets.ListenTCP(network, a)
}

// A listener that cannot open does not fail the sync: the other service
// ports are programmed, this one is rejected (not routed on), the failure is
// counted once, and a later sync opens it.
func TestListenFailureSkipsOnlyThatPort(t *testing.T) {
	testrig.RequireRoot(t)
	ns := testrig.NewNetns(t, "us")
	f := NewFake()
	socks := &flakySockets{Sockets: netnsSockets{ns: ns}}
	reg := prometheus.NewRegistry()
	p, err := New(Options{Family: proxier.IPv4, Kernel: f, Sockets: socks, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	snap := newSnap(proxier.NodeInfo{Name: "node1"}).
		add(proxier.ServicePort{Name: spName("default", "web", "http", ""), ClusterIP: addr("10.96.0.10"), Port: 80}, ep("10.244.2.10", 8080, "node2")).
		add(proxier.ServicePort{Name: spName("default", "dns", "dns", "UDP"), Protocol: "UDP", ClusterIP: addr("10.96.0.53"), Port: 53}, ep("10.244.2.10", 5353, "node2")).
		snap
	skipped := func() float64 {
		return testutil.ToFloat64(p.metrics.skipped.WithLabelValues("listen failed"))
	}

	socks.setFail(true)
	for range 3 { // partial and full syncs alike; counted once
		for _, full := range []bool{false, true} {
			if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: full}); err != nil {
				t.Fatalf("sync failed because one listener could not open: %v", err)
			}
		}
	}
	if ls := p.Listeners(); len(ls) != 1 || ls[0].Name.Protocol != "UDP" {
		t.Errorf("listeners %v, want only the UDP one", ls)
	}
	if n := skipped(); n != 1 {
		t.Errorf("skipped{listen failed} = %v, want 1", n)
	}
	nat, filter := strings.Join(f.Chain("nat", chainServices), "\n"), strings.Join(f.Chain("filter", chainFilter), "\n")
	if strings.Contains(nat, "10.96.0.10/32") || !strings.Contains(nat, "10.96.0.53/32") {
		t.Errorf("nat rules: want the UDP Service redirected, the TCP one not:\n%s", nat)
	}
	if !strings.Contains(filter, `"default/web:http has no proxy listener" -d 10.96.0.10/32 -p tcp --dport 80 -j REJECT --reject-with tcp-reset`) {
		t.Errorf("filter rules: want the TCP Service rejected:\n%s", filter)
	}

	socks.setFail(false)
	syncOK(t, p, snap, false)
	if len(p.Listeners()) != 2 || !strings.Contains(strings.Join(f.Chain("nat", chainServices), "\n"), "10.96.0.10/32") || strings.Contains(strings.Join(f.Chain("filter", chainFilter), "\n"), "REJECT") {
		t.Errorf("after the listener opened: listeners %v, nat %v, filter %v", p.Listeners(), f.Chain("nat", chainServices), f.Chain("filter", chainFilter))
	}
	// A new failure episode is logged and counted again.
	socks.setFail(true)
	syncOK(t, p, newSnap(proxier.NodeInfo{Name: "node1"}).snap, false)
	syncOK(t, p, snap, false)
	if n := skipped(); n != 2 {
		t.Errorf("skipped{listen failed} = %v after a second episode, want 2", n)
	}
}
