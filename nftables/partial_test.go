package nftables

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// TestRandomPartialEqualsFull replays flowtest's seeded random worlds
// (Services sharing external IPs and node ports, so that claims conflict
// and change hands) with partial syncs against the Fake. After every step
// the table, once the stale chains' delay has passed, equals a fresh full
// sync's; each partial transaction touches only the changed Services'
// chains and sets, no shared chain, set or map as a whole; and nothing is
// listed after the first sync.
func TestRandomPartialEqualsFull(t *testing.T) {
	ctx := context.Background()
	for _, seed := range flowtest.RandomSeeds(t, 4) {
		r := newFakeRig(t, nil)
		lists := -1
		flowtest.ReplayRandom(t, seed, 150, flowtest.RandomMode{
			Partial: func(req proxier.SyncRequest) (string, error) {
				r.nft.lastTx = "" // the stale chains went in the last step
				res, err := r.p.Sync(ctx, req)
				if err != nil {
					return "", err
				}
				if !req.Full {
					checkPartialTx(t, r.nft.lastTx, req.Changed)
					if res.Full || r.nft.lists != lists {
						t.Fatalf("seed %d: partial sync became full (%v) or listed the kernel", seed, res.Full)
					}
				}
				if got, want := res.NoLocalEndpoints, proxier.NoLocalEndpoints(req.Snapshot); !maps.Equal(got, want) {
					t.Fatalf("seed %d: no local endpoints %v, want %v", seed, got, want)
				}
				lists = r.nft.lists
				checkStaleFlushed(t, r.fake, r.p.stale)
				r.now = r.now.Add(2 * staleChainDelay)
				if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: req.Snapshot}); err != nil {
					return "", err
				}
				return canonicalDump(r.fake.Dump()), nil
			},
			Full: func(snap *proxier.Snapshot) (string, error) {
				return canonicalDump(fakeSync(t, flowOptions(), snap)), nil
			},
		})
	}
}

// canonicalDump sorts a Fake dump's elements: the Fake keeps them in the
// order they were added, which differs between a table built over several
// syncs and a fresh one. Rules keep their order.
func canonicalDump(dump string) string {
	var other, elems []string
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "add element ") {
			elems = append(elems, l)
		} else {
			other = append(other, l)
		}
	}
	slices.Sort(elems)
	return strings.Join(append(other, elems...), "\n")
}

// checkPartialTx fails t when a partial sync's transaction writes a
// shared chain, flushes a set or map, or touches a chain or affinity set
// of a Service that did not change. Elements may point to any Service's
// chains: a key can pass to an unchanged Service when a changed one
// leaves it.
func checkPartialTx(t *testing.T, tx string, changed proxier.NameSet) {
	t.Helper()
	for _, line := range strings.Split(tx, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] == "element" {
			continue
		}
		if f[1] != "chain" && f[1] != "rule" && f[1] != "set" {
			t.Fatalf("partial transaction touches a %s: %s", f[1], line)
		}
		svc, ok := serviceOfObject(f[4])
		if !ok || !changed.Has(svc) {
			t.Fatalf("partial transaction touches %s, not of a changed Service (%v): %s", f[4], changed.Sorted(), line)
		}
	}
}

// serviceOfObject is the Service a per-service chain or affinity set
// belongs to, from its name ("PREFIX-HASH-ns/name/proto/port…").
func serviceOfObject(name string) (types.NamespacedName, bool) {
	for _, prefix := range []string{prefixClusterPolicy, prefixLocalPolicy, prefixExternal, prefixFirewall, prefixEndpoint, prefixAffinity} {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || len(rest) < 9 {
			continue
		}
		if parts := strings.Split(rest[9:], "/"); len(parts) >= 3 {
			return types.NamespacedName{Namespace: parts[0], Name: parts[1]}, true
		}
	}
	return types.NamespacedName{}, false
}

// TestPartialSyncOfNothing: a partial sync with nothing changed sends no
// transaction at all.
func TestPartialSyncOfNothing(t *testing.T) {
	r := newFakeRig(t, nil)
	snap := flowtest.Scenarios()[0].Snapshot()
	r.mustSync(t, snap)
	r.nft.lastTx = ""
	res, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap})
	if err != nil || res.Full || r.nft.lastTx != "" {
		t.Errorf("sync of nothing: full %v, err %v, transaction %q", res.Full, err, r.nft.lastTx)
	}
}

// TestPartialSyncEscalates: a partial sync after a failed one, or with
// another Node (the shared chains depend on its address), is full, and
// the one after a failure lists the kernel.
func TestPartialSyncEscalates(t *testing.T) {
	ctx := context.Background()
	scs := flowtest.Scenarios()
	r := newFakeRig(t, nil)
	r.mustSync(t, scs[0].Snapshot())
	r.nft.failNext = true
	if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: scs[1].Snapshot(), Changed: allNames(scs[1].Snapshot())}); err == nil {
		t.Fatal("sync succeeded despite the failed transaction")
	}
	lists := r.nft.lists
	if res, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: scs[1].Snapshot()}); err != nil || !res.Full || r.nft.lists == lists {
		t.Errorf("sync after a failure: full %v, listed %v, err %v", res.Full, r.nft.lists != lists, err)
	}
	moved := scs[1].Snapshot()
	moved.Node.IPs = slices.Clone(moved.Node.IPs)
	moved.Node.IPs[0] = moved.Node.IPs[0].Next()
	if res, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: moved}); err != nil || !res.Full {
		t.Errorf("sync with another Node address: full %v, err %v", res.Full, err)
	}
	r.now = r.now.Add(2 * staleChainDelay)
	r.mustSync(t, moved)
	if got, want := r.fake.Dump(), fakeSync(t, flowOptions(), moved); got != want {
		t.Errorf("table differs from a fresh sync:\n%s", lineDiff(got, want))
	}
}

// allNames is every Service of snap, as a change set.
func allNames(snap *proxier.Snapshot) proxier.NameSet {
	s := proxier.NameSet{}
	for n := range snap.Services {
		s[n] = struct{}{}
	}
	return s
}

// TestBadInputIncremental feeds the bad-input corpus (Services claiming
// one destination, odd ports, broken slices) into one tracker an entry at
// a time and takes it out again in the same order, with a partial sync
// after each change: the table then equals a fresh full sync's. The
// entries that replace the Node, or only trace thousands of objects, are
// left out, and so is the 1,000-port Service (size, not change).
func TestBadInputIncremental(t *testing.T) {
	ctx := context.Background()
	r := newFakeRig(t, nil)
	tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv4}, nil, flowtest.Node().CreationTimestamp.Time)
	tr.OnNode(flowtest.Node())
	tr.SetServicesSynced()
	tr.SetSlicesSynced()
	entries := slices.DeleteFunc(flowtest.BadInputs(), func(e flowtest.BadInput) bool { return e.Node != nil || e.TraceOnly || e.Name == "svc-1000-ports" })
	for i, e := range append(entries, entries...) {
		adding := i < len(entries)
		for _, s := range e.Services {
			if adding {
				tr.OnService(nil, s)
			} else {
				tr.OnService(s, nil)
			}
		}
		for _, s := range e.Slices {
			if adding {
				tr.OnEndpointSlice(nil, s)
			} else {
				tr.OnEndpointSlice(s, nil)
			}
		}
		co := tr.Checkout()
		snap := co.Snapshots[proxier.IPv4]
		if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: co.Changed[proxier.IPv4], Full: i == 0}); err != nil {
			t.Fatalf("%s (adding %v): %v", e.Name, adding, err)
		}
		r.now = r.now.Add(2 * staleChainDelay)
		if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: snap}); err != nil { // deletes the stale chains
			t.Fatal(err)
		}
		if got, want := canonicalDump(r.fake.Dump()), canonicalDump(fakeSync(t, flowOptions(), snap)); got != want {
			t.Fatalf("%s (adding %v): table differs from a fresh sync:\n%s", e.Name, adding, lineDiff(got, want))
		}
	}
}

// TestPartialScenarioSwitch: a partial sync from every flow scenario to
// the next, with every Service of both changed, leaves a fresh sync's
// table once the stale chains' delay has passed, in IPv4 and IPv6.
func TestPartialScenarioSwitch(t *testing.T) {
	ctx := context.Background()
	var v4, v6 []*proxier.Snapshot
	for _, sc := range flowtest.Scenarios() {
		v4 = append(v4, sc.Snapshot())
	}
	for _, sc := range flowtest.ScenariosIPv6() {
		v6 = append(v6, sc.SnapshotIPv6())
	}
	for _, fam := range []struct {
		opts  Options
		nft   knftables.Family
		snaps []*proxier.Snapshot
	}{{flowOptions(), knftables.IPv4Family, v4}, {flowOptionsIPv6(), knftables.IPv6Family, v6}} {
		for i, from := range fam.snaps {
			to := fam.snaps[(i+1)%len(fam.snaps)]
			r := newFakeRigWith(t, knftables.NewFake(fam.nft, tableName), fam.opts)
			r.mustSync(t, from)
			changed := allNames(from)
			maps.Copy(changed, allNames(to))
			if res, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: to, Changed: changed}); err != nil || res.Full {
				t.Fatalf("%s %d: partial sync: full %v, %v", fam.opts.Family, i, res.Full, err)
			}
			r.now = r.now.Add(2 * staleChainDelay)
			if _, err := r.p.Sync(ctx, proxier.SyncRequest{Snapshot: to}); err != nil {
				t.Fatal(err)
			}
			if got, want := canonicalDump(r.fake.Dump()), canonicalDump(fakeSync(t, fam.opts, to)); got != want {
				t.Errorf("%s %d: table differs from a fresh sync:\n%s", fam.opts.Family, i, lineDiff(got, want))
			}
		}
	}
}
