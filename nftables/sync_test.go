package nftables

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// fakeRig is a Proxier on a knftables.Fake with a clock the test moves.
type fakeRig struct {
	fake *knftables.Fake
	nft  *failingNFT
	p    *Proxier
	now  time.Time
}

// failingNFT fails the next Run when failNext is set, as nft does when
// the kernel rejects a transaction: nothing is applied.
// It counts the listings and keeps the last transaction run.
type failingNFT struct {
	knftables.Interface
	failNext bool
	lists    int
	lastTx   string
}

func (f *failingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	if f.failNext {
		f.failNext = false
		return errors.New("injected failure")
	}
	f.lastTx = tx.String()
	if fake, ok := f.Interface.(*knftables.Fake); ok {
		if err := checkElementAdds(fake, f.lastTx); err != nil {
			return err
		}
	}
	return f.Interface.Run(ctx, tx)
}

// elementOp is an element line of a transaction: verb, map, key, value.
var elementOp = regexp.MustCompile(`^(add|delete) element \S+ \S+ (\S+) \{ (.*?)(?: comment ".*")?(?: : (.*))? \}$`)

// checkElementAdds rejects adding a map element whose key has another
// value, as the kernel does ("File exists"); the Fake would replace it.
func checkElementAdds(fake *knftables.Fake, tx string) error {
	touched := map[string]*string{} // map and key -> value, nil once deleted
	for _, line := range strings.Split(tx, "\n") {
		m := elementOp.FindStringSubmatch(line)
		if m == nil || fake.Table == nil || fake.Table.Maps[m[2]] == nil {
			continue
		}
		k := m[2] + " " + m[3]
		old, ok := touched[k]
		if !ok {
			old = mapValue(fake.Table.Maps[m[2]], m[3])
		}
		if m[1] == "delete" {
			touched[k] = nil
			continue
		}
		if old != nil && *old != m[4] {
			return fmt.Errorf("add of %s with value %q: File exists (it has %q)", k, m[4], *old)
		}
		touched[k] = &m[4]
	}
	return nil
}

// mapValue is the value of key in m, nil if m has no such element.
func mapValue(m *knftables.FakeMap, key string) *string {
	for _, e := range m.Elements {
		if strings.Join(e.Key, " . ") == key {
			v := strings.Join(e.Value, " ")
			return &v
		}
	}
	return nil
}

func (f *failingNFT) List(ctx context.Context, objectType string) ([]string, error) {
	f.lists++
	return f.Interface.List(ctx, objectType)
}

func newFakeRig(t *testing.T, fake *knftables.Fake) *fakeRig {
	t.Helper()
	if fake == nil {
		fake = knftables.NewFake(knftables.IPv4Family, tableName)
	}
	return newFakeRigWith(t, fake, flowOptions())
}

// newFakeRigWith is a fakeRig on fake with opts.
func newFakeRigWith(t *testing.T, fake *knftables.Fake, opts Options) *fakeRig {
	t.Helper()
	r := &fakeRig{fake: fake, nft: &failingNFT{Interface: fake}, now: time.Unix(1e9, 0)}
	opts.NFT = r.nft
	opts.Metrics = NewMetrics(nil)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return r.now }
	r.p = p
	return r
}

func (r *fakeRig) sync(t *testing.T, snap *proxier.Snapshot) error {
	t.Helper()
	_, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true})
	return err
}

func (r *fakeRig) mustSync(t *testing.T, snap *proxier.Snapshot) {
	t.Helper()
	if err := r.sync(t, snap); err != nil {
		t.Fatal(err)
	}
}

// settle syncs snap twice, the second time after the stale chains'
// delay, so that what the first left flushed is deleted.
func (r *fakeRig) settle(t *testing.T, snap *proxier.Snapshot) {
	t.Helper()
	r.mustSync(t, snap)
	r.now = r.now.Add(2 * staleChainDelay)
	r.mustSync(t, snap)
}

// TestSyncReplacesPreviousState: after any scenario, syncing another one
// leaves exactly what a sync into an empty table leaves, once the
// flushed chains' delay has passed; before that, they are there, empty.
func TestSyncReplacesPreviousState(t *testing.T) {
	scs := flowtest.Scenarios()
	for i, from := range scs {
		to := scs[(i+1)%len(scs)]
		t.Run(from.Name+"-to-"+to.Name, func(t *testing.T) {
			r := newFakeRig(t, nil)
			r.mustSync(t, from.Snapshot())
			lists := r.nft.lists
			r.mustSync(t, to.Snapshot())
			checkStaleFlushed(t, r.fake, r.p.stale)
			r.now = r.now.Add(2 * staleChainDelay)
			r.mustSync(t, to.Snapshot())
			if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), to.Snapshot()); got != want {
				t.Errorf("table after the switch differs from a fresh sync:\n%s", lineDiff(got, want))
			}
			if r.nft.lists != lists {
				t.Errorf("listed the kernel after the first sync")
			}
		})
	}
}

// checkStaleFlushed checks that every chain waiting for deletion is in
// the table and empty.
func checkStaleFlushed(t *testing.T, fake *knftables.Fake, stale map[string]time.Time) {
	t.Helper()
	tbl := fake.Table
	for c := range stale {
		ch := tbl.Chains[c]
		if ch == nil {
			t.Errorf("stale chain %s is gone before its delay", c)
		} else if len(ch.Rules) > 0 {
			t.Errorf("stale chain %s still has %d rules", c, len(ch.Rules))
		}
	}
}

// TestSyncTakesOver: a table left by another writer (a previous kproxy,
// kube-proxy's nftables mode: its nodeport-ips set, service chains and
// affinity sets of Services that no longer exist) ends up exactly as a
// fresh sync's.
func TestSyncTakesOver(t *testing.T) {
	old := knftables.NewFake(knftables.IPv4Family, tableName)
	basic := flowtest.Scenarios()[0]
	if _, err := (&Proxier{}).withFake(old).Sync(context.Background(), proxier.SyncRequest{Snapshot: basic.Snapshot(), Full: true}); err != nil {
		t.Fatal(err)
	}
	tx := old.NewTransaction()
	tx.Add(&knftables.Set{Name: setNodePortIPs, Type: "ipv4_addr"})
	tx.Add(&knftables.Element{Set: setNodePortIPs, Key: []string{flowtest.ThisNodeIP}})
	tx.Add(&knftables.Rule{Chain: chainServices, Rule: "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"})
	tx.Add(&knftables.Chain{Name: "service-ABCDEFGH-ns/gone/tcp/p80"})
	tx.Add(&knftables.Rule{Chain: "service-ABCDEFGH-ns/gone/tcp/p80", Rule: "meta l4proto tcp dnat to 10.1.1.1:80"})
	if err := old.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	r := newFakeRig(t, old)
	to := flowtest.Scenarios()[3]
	r.settle(t, to.Snapshot())
	if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), to.Snapshot()); got != want {
		t.Errorf("table after take-over differs from a fresh sync:\n%s", lineDiff(got, want))
	}
}

// withFake is a Proxier with flowOptions on fake, for setting up tables.
func (*Proxier) withFake(fake *knftables.Fake) *Proxier {
	opts := flowOptions()
	opts.NFT = fake
	p, _ := New(opts)
	return p
}

// TestSyncFailure: a rejected transaction changes nothing and is reported;
// the next sync lists the kernel again and converges.
func TestSyncFailure(t *testing.T) {
	scs := flowtest.Scenarios()
	r := newFakeRig(t, nil)
	r.mustSync(t, scs[0].Snapshot())
	before := r.fake.Dump()
	r.nft.failNext = true
	if err := r.sync(t, scs[1].Snapshot()); err == nil {
		t.Fatal("sync succeeded despite the failed transaction")
	}
	if r.fake.Dump() != before {
		t.Error("a failed sync changed the table")
	}
	if n := testutil.ToFloat64(r.p.opts.Metrics.SyncFailures.WithLabelValues("IPv4")); n != 1 {
		t.Errorf("sync failures counted %v, want 1", n)
	}
	lists := r.nft.lists
	r.settle(t, scs[1].Snapshot())
	if r.nft.lists == lists {
		t.Error("the sync after a failure did not list the kernel again")
	}
	if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), scs[1].Snapshot()); got != want {
		t.Errorf("table after recovery differs from a fresh sync:\n%s", lineDiff(got, want))
	}
}

// TestStaleChainDeletionFailure: when deleting the stale chains fails, it
// is counted, the sync goes on, and the next one lists the kernel and
// deletes them.
func TestStaleChainDeletionFailure(t *testing.T) {
	scs := flowtest.Scenarios()
	r := newFakeRig(t, nil)
	r.mustSync(t, scs[0].Snapshot())
	r.mustSync(t, scs[1].Snapshot())
	r.now = r.now.Add(2 * staleChainDelay)
	r.nft.failNext = true // the deletion's transaction
	r.mustSync(t, scs[1].Snapshot())
	if n := testutil.ToFloat64(r.p.opts.Metrics.CleanupFailures.WithLabelValues("IPv4")); n != 1 {
		t.Errorf("cleanup failures counted %v, want 1", n)
	}
	r.settle(t, scs[1].Snapshot())
	if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), scs[1].Snapshot()); got != want {
		t.Errorf("table after the failed deletion differs from a fresh sync:\n%s", lineDiff(got, want))
	}
}

// TestCleanup: Cleanup removes the table and is idempotent; HasLeftovers
// sees the table.
func TestCleanup(t *testing.T) {
	ctx := context.Background()
	fake := knftables.NewFake(knftables.IPv4Family, tableName)
	opts := flowOptions()
	opts.NFT = fake
	if left, err := HasLeftovers(ctx, opts); err != nil || left {
		t.Fatalf("HasLeftovers on an empty fake = %v, %v", left, err)
	}
	r := newFakeRig(t, fake)
	r.mustSync(t, flowtest.Scenarios()[0].Snapshot())
	if left, err := HasLeftovers(ctx, opts); err != nil || !left {
		t.Fatalf("HasLeftovers after a sync = %v, %v", left, err)
	}
	for range 2 {
		if err := Cleanup(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
	if d := fake.Dump(); d != "" {
		t.Errorf("table left after Cleanup:\n%s", d)
	}
}

// lineDiff lists the lines only in got (+) or only in want (-).
func lineDiff(got, want string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	for l := range g {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	for l := range w {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

// TestOffendingLines: the lines of a rejected transaction are found from
// nft's "/dev/stdin:N:" positions; positions outside it are ignored.
func TestOffendingLines(t *testing.T) {
	tx := knftables.NewFake(knftables.IPv4Family, tableName).NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "bad"})
	err := errors.New("/dev/stdin:2:1-10: Error: Could not process rule: File exists\n/dev/stdin:999:1: x")
	got := offendingLines(err, tx.String())
	if want := []string{"2: add chain ip kube-proxy bad"}; !slices.Equal(got, want) {
		t.Errorf("offendingLines = %q, want %q", got, want)
	}
}

// TestFreshTableSkipsChainFlushes: a first sync into an empty table adds
// the service chains without flushing them and adds the elements after
// every chain, grouped by set and map; a first sync over a table that
// holds the chains (a restart) flushes each of them, all before the first
// service rule.
func TestFreshTableSkipsChainFlushes(t *testing.T) {
	snap := flowtest.Scenarios()[0].Snapshot()
	fake := knftables.NewFake(knftables.IPv4Family, tableName)
	newFakeRig(t, fake).mustSync(t, snap)
	fresh := fake.LastTransaction.String()
	if n := len(chainsWith(fresh, "flush")); n != 0 {
		t.Errorf("fresh table: %d service chain flushes, want none", n)
	}
	lines := strings.Split(fresh, "\n")
	lastChain, firstElem := 0, len(lines)
	var order []string
	for i, l := range lines {
		if strings.HasPrefix(l, "add chain ") || strings.HasPrefix(l, "add rule ") {
			lastChain = i
		}
		if f := strings.Fields(l); len(f) > 4 && f[0] == "add" && f[1] == "element" {
			firstElem = min(firstElem, i)
			if len(order) == 0 || order[len(order)-1] != f[4] {
				order = append(order, f[4])
			}
		}
	}
	if firstElem < lastChain {
		t.Errorf("element at line %d before the last chain or rule at line %d", firstElem+1, lastChain+1)
	}
	if !slices.IsSorted(order) || len(slices.Compact(slices.Clone(order))) != len(order) {
		t.Errorf("elements not grouped by set in name order: %q", order)
	}

	newFakeRig(t, fake).mustSync(t, snap)
	restart := fake.LastTransaction.String()
	added, flushed := chainsWith(restart, "add"), chainsWith(restart, "flush")
	if len(added) == 0 || !maps.Equal(added, flushed) {
		t.Errorf("restart over the table: service chains added %v, flushed %v; want all flushed", added, flushed)
	}
	lastFlush, firstRule := 0, len(restart)
	for i, l := range strings.Split(restart, "\n") {
		if f := strings.Fields(l); len(f) > 4 && isServiceChain(f[4]) {
			if f[0] == "flush" {
				lastFlush = i
			} else if f[1] == "rule" {
				firstRule = min(firstRule, i)
			}
		}
	}
	if lastFlush > firstRule {
		t.Errorf("restart: a service chain flushed at line %d, after the first service rule at line %d", lastFlush+1, firstRule+1)
	}
}

// chainsWith are the service chains of the transaction's "VERB chain"
// lines.
func chainsWith(text, verb string) map[string]bool {
	chains := map[string]bool{}
	for l := range strings.Lines(text) {
		if f := strings.Fields(l); len(f) > 4 && f[0] == verb && f[1] == "chain" && isServiceChain(f[4]) {
			chains[f[4]] = true
		}
	}
	return chains
}

// TestFullSyncOverMissingChains: a full sync trusting its state succeeds
// when someone deleted one of its service chains, or the whole table,
// since the last sync (before the canary noticed), and leaves the table
// a fresh sync writes.
func TestFullSyncOverMissingChains(t *testing.T) {
	snap := flowtest.Scenarios()[0].Snapshot()
	for name, damage := range map[string]func(*knftables.Fake){
		"one chain": func(f *knftables.Fake) {
			for c := range f.Table.Chains {
				if isServiceChain(c) {
					delete(f.Table.Chains, c)
					return
				}
			}
		},
		"table": func(f *knftables.Fake) { f.Table = nil },
	} {
		t.Run(name, func(t *testing.T) {
			r := newFakeRig(t, nil)
			r.mustSync(t, snap)
			damage(r.fake)
			r.mustSync(t, snap)
			if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), snap); got != want {
				t.Errorf("table differs from a fresh sync:\n%s", lineDiff(got, want))
			}
		})
	}
}
