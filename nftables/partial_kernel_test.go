package nftables

import (
	"context"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelRandomPartialEqualsFull is TestRandomPartialEqualsFull with
// the real nft: every few partial syncs, `nft list table` equals that of
// a fresh full sync in another namespace (so nft accepts the element
// deletions and re-adds, set replacements and chain flushes partial
// syncs send, by netlink when they can). The Proxier's clock jumps past
// the stale chains' delay after each step (Linux 6.2+ lets the chains go
// at once).
func TestKernelRandomPartialEqualsFull(t *testing.T) {
	ctx := context.Background()
	newProxier := func(suffix string) (*Proxier, string) {
		ns := newTestNetns(t, suffix)
		opts := flowOptions()
		opts.NFT = newNetnsNFT(t, proxier.IPv4, ns)
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return p, ns
	}
	fresh := func(snap *proxier.Snapshot) (string, error) {
		rp, rns := newProxier("rndref")
		if _, err := rp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
			return "", err
		}
		return listTableIn(t, rns), nil
	}
	p, ns := newProxier("rnd")
	now := time.Unix(1e9, 0)
	p.now = func() time.Time { return now }
	flowtest.ReplayRandom(t, 42, 40, flowtest.RandomMode{
		Partial: func(req proxier.SyncRequest) (string, error) {
			if _, err := p.Sync(ctx, req); err != nil {
				return "", err
			}
			now = now.Add(2 * staleChainDelay)
			if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: req.Snapshot}); err != nil {
				return "", err
			}
			return listTableIn(t, ns), nil
		},
		Full:  fresh,
		Every: 4,
	})
	if n := p.nft.(*netnsNFT).Interface.(*mergingNFT).netlink.applied; n == 0 {
		t.Error("no partial sync went by netlink")
	} else {
		t.Logf("%d partial syncs went by netlink", n)
	}
}
