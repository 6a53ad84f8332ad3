package iptables

import (
	"hash/maphash"
	"testing"
)

// TestPartialRenderBuildsOnlyDirtyBuckets: after one Service's endpoints
// change, a render keeps every bucket chain body but the one holding that
// Service's address (same pointer, so neither built nor hashed again),
// and the kept and rebuilt buckets equal a fresh renderer's.
func TestPartialRenderBuildsOnlyDirtyBuckets(t *testing.T) {
	w := newScaleWorld(7)
	w.add(2000, 2)
	o := flowOptions()
	o.Kernel = NewFake()
	opts, err := o.normalized()
	if err != nil {
		t.Fatal(err)
	}
	seed := maphash.MakeSeed()
	r := newRenderer(opts, true, seed)
	snap, _ := w.checkout()
	first := r.render(snap)

	w.replaceEndpoints(123, 2)
	snap, _ = w.checkout()
	second := r.render(snap)
	if len(second.changed) != 1 {
		t.Fatalf("changed: %d Services, want 1", len(second.changed))
	}
	changedBucket := level2Chain(bucketOf(second.changed[0].disp[0].dst))
	fresh := newRenderer(opts, true, seed).render(snap)
	rebuilt := 0
	for bk := range 256 {
		chain := level2Chain(byte(bk))
		got := second.shared[tableNAT][chain]
		if got != first.shared[tableNAT][chain] {
			rebuilt++
			if chain != changedBucket {
				t.Errorf("%s rebuilt, only %s holds the changed Service", chain, changedBucket)
			}
		}
		if string(got.text) != string(fresh.shared[tableNAT][chain].text) {
			t.Errorf("%s differs from a fresh render:\n%s\nwant:\n%s", chain, got.text, fresh.shared[tableNAT][chain].text)
		}
	}
	if rebuilt != 1 {
		t.Errorf("%d bucket chains rebuilt, want 1", rebuilt)
	}

	// A Service removed: its bucket loses its entry.
	gone := w.services[456]
	w.tr.OnService(gone, nil)
	w.tr.OnEndpointSlice(w.slices[456], nil)
	snap, _ = w.checkout()
	third := r.render(snap)
	fresh = newRenderer(opts, true, seed).render(snap)
	for bk := range 256 {
		chain := level2Chain(byte(bk))
		if got, want := third.shared[tableNAT][chain].text, fresh.shared[tableNAT][chain].text; string(got) != string(want) {
			t.Errorf("after removing %s, %s differs from a fresh render:\n%s\nwant:\n%s", gone.Name, chain, got, want)
		}
	}
	if len(third.gone) != 1 {
		t.Fatalf("gone: %d Services, want 1", len(third.gone))
	}
	goneBucket := level2Chain(bucketOf(third.gone[0].disp[0].dst))
	if string(third.shared[tableNAT][goneBucket].text) == string(second.shared[tableNAT][goneBucket].text) {
		t.Errorf("removing %s left its bucket %s unchanged", gone.Name, goneBucket)
	}
}
