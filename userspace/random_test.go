package userspace

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestRandomIncrementalEqualsFull replays flowtest's seeded random worlds
// with partial syncs and checks after every step that the rules and the
// listener table (which service ports have a listener, and the endpoints
// and policy each balances over) equal those of a fresh proxier's full
// sync. Every step's fresh proxier listens in one namespace, closed before
// the next.
func TestRandomIncrementalEqualsFull(t *testing.T) {
	ctx := context.Background()
	refNS := testrig.NewNetns(t, "usref")
	for _, seed := range flowtest.RandomSeeds(t, 3) {
		p, f := newFakeProxier(t)
		flowtest.ReplayRandom(t, seed, 100, flowtest.RandomMode{
			Partial: func(req proxier.SyncRequest) (string, error) {
				_, err := p.Sync(ctx, req)
				return normalizedRules(p, f) + listenerTable(p), err
			},
			Full: func(snap *proxier.Snapshot) (string, error) {
				rf := NewFake()
				rp, err := New(Options{Family: proxier.IPv4, Kernel: rf, Sockets: netnsSockets{ns: refNS}})
				if err != nil {
					return "", err
				}
				defer rp.Close()
				_, err = rp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true})
				return normalizedRules(rp, rf) + listenerTable(rp), err
			},
		})
		_ = p.Close()
	}
}

// listenerTable describes every listener: its service port and class, the
// endpoints its balancer uses and those it tracks, its policy and
// affinity. The proxy port is left out: it differs between proxiers.
func listenerTable(p *Proxier) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	b.WriteString("# listeners\n")
	for _, k := range slices.SortedFunc(maps.Keys(p.listeners), compareKeys) {
		l := p.listeners[k]
		bal := l.state.Load()
		l.mu.Lock()
		tracked := slices.SortedFunc(maps.Keys(l.backends), netip.AddrPort.Compare)
		l.mu.Unlock()
		fmt.Fprintf(&b, "%s external=%v useLocal=%v affinity=%v\n  cluster %v\n  local %v\n  tracked %v\n",
			k, bal.external, bal.useLocal, bal.affinity, backendAddrs(bal.cluster), backendAddrs(bal.local), tracked)
	}
	return b.String()
}

func backendAddrs(bs []*backend) []netip.AddrPort {
	out := make([]netip.AddrPort, len(bs))
	for i, be := range bs {
		out[i] = be.addr
	}
	return out
}
