package ipvs

import (
	"context"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// TestRandomIncrementalEqualsFull replays flowtest's seeded random worlds
// with partial syncs against the Fake and checks after every step that
// the kernel (virtual servers, real servers and weights, addresses, ipset
// members, iptables rules) equals a fresh proxier's full sync. A removed
// TCP real server first drains at weight 0; the Fake has no connections,
// so the next sync (one with nothing changed, as the periodic one) deletes
// it, and the states compare exactly after that sync.
func TestRandomIncrementalEqualsFull(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	for _, seed := range flowtest.RandomSeeds(t, 4) {
		k := nodeFake()
		p := newFakeProxier(t, k, &now)
		flowtest.ReplayRandom(t, seed, 150, flowtest.RandomMode{
			Partial: func(req proxier.SyncRequest) (string, error) {
				if _, err := p.Sync(ctx, req); err != nil {
					return "", err
				}
				_, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: req.Snapshot})
				return k.Dump(), err
			},
			Full: func(snap *proxier.Snapshot) (string, error) {
				fresh := nodeFake()
				_, err := newFakeProxier(t, fresh, &now).Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true})
				return fresh.Dump(), err
			},
		})
	}
}
