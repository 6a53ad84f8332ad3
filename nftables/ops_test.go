package nftables

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// checkedTextNFT is knftables' Fake as a textSender: each sync's text,
// written straight by a textWriter, must be compactText of knftables'
// text of the same operations (the writer's mirror), which the Fake runs.
type checkedTextNFT struct {
	*knftables.Fake
	family knftables.Family
	t      *testing.T
	minRun int
	sent   int
}

func (n *checkedTextNFT) newTextWriter() *textWriter {
	w := newTextWriter(n.Fake, n.family, n.minRun)
	w.mirror = n.Fake.NewTransaction()
	return w
}

// netlinkEnabled: partial syncs compile their netlink batch here too
// (never sent), so the pure flow tests run the compiler on every change.
func (n *checkedTextNFT) netlinkEnabled() bool { return true }

func (n *checkedTextNFT) sendText(ctx context.Context, w *textWriter) (time.Duration, error) {
	got, err := w.text()
	if err != nil {
		return 0, err
	}
	if want := compactText(w.mirror.String(), n.minRun); got != want {
		n.t.Errorf("written text differs from knftables' text compacted:\n%s", lineDiff(got, want))
	}
	if w.NumOperations() != w.mirror.NumOperations() {
		n.t.Errorf("writer counts %d operations, knftables %d", w.NumOperations(), w.mirror.NumOperations())
	}
	n.sent++
	return time.Millisecond, n.Fake.Run(ctx, w.mirror)
}

// TestTextWriterWritesCompactText: every flow scenario (IPv4 and IPv6)
// and one of many Services, reached by partial and full syncs with the
// stale chains deleted on the way, is sent as exactly the text knftables
// would have written for the same operations, compacted, with table
// blocks for runs of any length or only long ones.
func TestTextWriterWritesCompactText(t *testing.T) {
	for _, fam := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
		for _, minRun := range []int{1, minBlockLines} {
			t.Run(fmt.Sprintf("%s/min-run-%d", fam, minRun), func(t *testing.T) {
				scenarios, opts, nftFam := append(flowtest.Scenarios(), manyServices(1200)), flowOptions(), knftables.IPv4Family
				if fam == proxier.IPv6 {
					scenarios = append(flowtest.ScenariosIPv6(), flowtest.ScenarioIPv6(manyServices(1200)))
					opts, nftFam = flowOptionsIPv6(), knftables.IPv6Family
				}
				nft := &checkedTextNFT{Fake: knftables.NewFake(nftFam, tableName), family: nftFam, t: t, minRun: minRun}
				opts.NFT = nft
				p, err := New(opts)
				if err != nil {
					t.Fatal(err)
				}
				syncThrough(t, p, fam, scenarios, func(string, bool) {})
				if want := 2 * len(scenarios); nft.sent != want {
					t.Errorf("%d syncs sent text, want %d", nft.sent, want)
				}
			})
		}
	}
}

// TestTextWriterRefusesInvalidOperations: an operation knftables refuses
// makes the writer's text an error, as a transaction's sticky error does,
// and the operations after it are dropped.
func TestTextWriterRefusesInvalidOperations(t *testing.T) {
	w := newTextWriter(knftables.NewFake(knftables.IPv4Family, tableName), knftables.IPv4Family, 1)
	w.Add(&knftables.Chain{Name: "a/b"})
	w.Add(&knftables.Rule{Chain: "a/b", Rule: "counter", Index: knftables.PtrTo(3), Handle: knftables.PtrTo(4)})
	w.Add(&knftables.Chain{Name: "c/d"})
	if _, err := w.text(); err == nil || !strings.Contains(err.Error(), "invalid transaction") {
		t.Errorf("text after a refused operation: %v, want the refusal", err)
	}
	if s := w.String(); !strings.HasPrefix(s, txErrorMark) || strings.Contains(s, "c/d") {
		t.Errorf("String after a refused operation = %q, want knftables' error comment", s)
	}
}

// syncThrough syncs p to each scenario in turn, by a partial sync and
// then a full one, with the clock moving on so that stale chains are
// deleted; after calls back after each sync.
func syncThrough(t *testing.T, p *Proxier, fam proxier.Family, scenarios []flowtest.Scenario, after func(scenario string, full bool)) {
	t.Helper()
	clock := time.Unix(1e9, 0)
	p.now = func() time.Time { clock = clock.Add(2 * staleChainDelay); return clock }
	var prev *proxier.Snapshot
	for _, sc := range scenarios {
		snap := sc.Snapshot()
		if fam == proxier.IPv6 {
			snap = sc.SnapshotIPv6()
		}
		for _, full := range []bool{false, true} {
			req := proxier.SyncRequest{Snapshot: snap, Full: full, Changed: changedBetween(prev, snap)}
			if _, err := p.Sync(context.Background(), req); err != nil {
				t.Fatalf("%s (full %v): %v", sc.Name, full, err)
			}
			after(sc.Name, full)
		}
		prev = snap
	}
}
