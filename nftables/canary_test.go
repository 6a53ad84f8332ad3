package nftables

import (
	"context"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestCanary: Flushed is false before the first sync and while the table
// is intact; once someone deletes the table, or flushes it (every chain's
// rules, as `nft flush table` does), it reports true, and the next (full)
// sync lists the kernel and leaves a fresh sync's table.
func TestCanary(t *testing.T) {
	ctx := context.Background()
	for name, spoil := range map[string]func(*knftables.Fake, *knftables.Transaction){
		"delete table": func(_ *knftables.Fake, tx *knftables.Transaction) { tx.Delete(&knftables.Table{}) },
		"flush table": func(f *knftables.Fake, tx *knftables.Transaction) {
			for c := range f.Table.Chains {
				tx.Flush(&knftables.Chain{Name: c})
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newFakeRig(t, nil)
			snap := flowtest.Scenarios()[0].Snapshot()
			checkFlushed(t, r.p, false)
			r.mustSync(t, snap)
			checkFlushed(t, r.p, false)
			tx := r.fake.NewTransaction()
			spoil(r.fake, tx)
			if err := r.fake.Run(ctx, tx); err != nil {
				t.Fatal(err)
			}
			checkFlushed(t, r.p, true)
			lists := r.nft.lists
			r.mustSync(t, snap)
			if r.nft.lists == lists {
				t.Error("the sync after the canary alarm did not list the kernel")
			}
			checkFlushed(t, r.p, false)
			if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), snap); got != want {
				t.Errorf("table after the resync differs from a fresh sync:\n%s", lineDiff(got, want))
			}
		})
	}
}

func checkFlushed(t *testing.T, p *Proxier, want bool) {
	t.Helper()
	if got, err := p.Flushed(context.Background()); err != nil || got != want {
		t.Fatalf("Flushed() = %v, %v; want %v", got, err, want)
	}
}

// TestKernelCanary is TestCanary with the real nft: `nft delete table`
// and `nft flush table` in the test namespace set the canary off, and a
// full sync brings back the table a fresh sync writes. The netlink dump
// counts the canary chain's one rule only, in IPv4 and IPv6.
func TestKernelCanary(t *testing.T) {
	snap := flowtest.Scenarios()[0].Snapshot()
	t.Run("count", func(t *testing.T) {
		for fam, opts := range map[proxier.Family]Options{proxier.IPv4: flowOptions(), proxier.IPv6: flowOptionsIPv6()} {
			ns := newTestNetns(t, "count")
			nft := newNetnsNFT(t, fam, ns)
			opts.NFT = nft
			s := flowtest.Scenarios()[0].Snapshot()
			if fam == proxier.IPv6 {
				s = flowtest.ScenariosIPv6()[0].SnapshotIPv6()
			}
			syncOnce(t, opts, s)
			if n, err := nft.CountRules(context.Background(), chainCanary); err != nil || n != 1 {
				t.Errorf("%s: CountRules(%s) = %d, %v; want 1", fam, chainCanary, n, err)
			}
		}
	})
	for _, verb := range []string{"delete", "flush"} {
		t.Run(verb, func(t *testing.T) {
			ns := newTestNetns(t, "canary")
			opts := flowOptions()
			opts.NFT = newNetnsNFT(t, proxier.IPv4, ns)
			p := syncOnce(t, opts, snap)
			want := listTableIn(t, ns)
			checkFlushed(t, p, false)
			testrig.Run(t, ns, "nft", verb, "table", "ip", tableName)
			checkFlushed(t, p, true)
			if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
				t.Fatal(err)
			}
			checkFlushed(t, p, false)
			if got := listTableIn(t, ns); got != want {
				t.Errorf("table after the resync differs from the first sync's:\n%s", lineDiff(got, want))
			}
		})
	}
}
