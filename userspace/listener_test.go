package userspace

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/kproxy/kproxy/proxier"
)

// update keeps the *backend of every endpoint that stays (health and
// counters survive), marks the removed ones and builds the balancer once:
// an update that keeps all 200 endpoints allocates no backend and no
// second balancer, so its allocations do not grow with the endpoint count.
func TestUpdateKeepsBackendsAndBuildsOnce(t *testing.T) {
	node := proxier.NodeInfo{Name: "node1"}
	var eps []proxier.Endpoint
	for i := range 200 {
		eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d", 2+i/200, 10+i%200), 8080, "node2"))
	}
	sp := proxier.ServicePort{Name: spName("default", "big", "", ""), ClusterIP: addr("10.96.0.50"), Port: 80}
	spec := specFor(t, newSnap(node).add(sp, eps...), "default", "big", internal)
	l := &listener{backends: map[netip.AddrPort]*backend{}}
	now := time.Unix(1000, 0)
	l.update(spec, now)
	first := l.backends[eps[0].AddrPort()]
	if first == nil || len(l.backends) != 200 {
		t.Fatalf("after the first update: %d backends", len(l.backends))
	}

	allocs := testing.AllocsPerRun(20, func() { l.update(spec, now) })
	// One map (a few buckets' allocations), one balancer, two slices.
	if allocs > 40 {
		t.Errorf("an update keeping 200 endpoints made %.0f allocations, want a few (no per-endpoint allocation, one balancer)", allocs)
	}
	if l.backends[eps[0].AddrPort()] != first {
		t.Error("a kept endpoint got a new *backend")
	}

	spec2 := specFor(t, newSnap(node).add(sp, eps[1:]...), "default", "big", internal)
	l.update(spec2, now.Add(time.Second))
	if first.removedAt.Load() != now.Add(time.Second).UnixNano() {
		t.Error("the removed endpoint was not marked removed")
	}
	if l.backends[eps[1].AddrPort()].removedAt.Load() != 0 || len(l.backends) != 199 || len(l.state.Load().cluster) != 199 {
		t.Errorf("after removing one endpoint: %d backends, %d in the balancer", len(l.backends), len(l.state.Load().cluster))
	}
}

// failingReader fails every read until it has failed n times, then reports
// itself closed.
type failingReader struct{ reads, n int }

func (r *failingReader) ReadMsgUDPAddrPort(b, oob []byte) (int, int, int, netip.AddrPort, error) {
	r.reads++
	if r.reads > r.n {
		return 0, 0, 0, netip.AddrPort{}, net.ErrClosed
	}
	return 0, 0, 0, netip.AddrPort{}, syscall.ENOBUFS
}

// A persistent read error pauses the UDP loop with a doubling backoff
// (capped at a second) instead of spinning.
func TestUDPReadErrorsBackOff(t *testing.T) {
	l := &listener{key: listenerKey{Name: spName("default", "dns", "", "UDP")}}
	r := &failingReader{n: 12}
	var pauses []time.Duration
	l.readDatagrams(r, func(d time.Duration) { pauses = append(pauses, d) })
	if len(pauses) != r.n {
		t.Fatalf("%d failed reads caused %d pauses, want one each", r.n, len(pauses))
	}
	for i := 1; i < len(pauses); i++ {
		if pauses[i] != min(2*pauses[i-1], time.Second) {
			t.Errorf("pauses %v do not double up to 1s", pauses)
			break
		}
	}
	if pauses[0] <= 0 || pauses[len(pauses)-1] != time.Second {
		t.Errorf("pauses %v: want a positive start and a 1s cap", pauses)
	}
}
