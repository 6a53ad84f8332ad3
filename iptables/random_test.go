package iptables

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// randomOptions put the bucket threshold where random sequences cross it
// both ways.
func randomOptions() Options {
	o := flowOptions()
	o.bucketMin = 12
	return o
}

// TestRandomPartialEqualsFull replays seeded random change sequences with
// partial syncs against the Fake and checks after every step that the
// state equals a fresh full sync of the same snapshot, including when the
// dispatch switches between the flat and the bucketed layout.
func TestRandomPartialEqualsFull(t *testing.T) {
	ctx := context.Background()
	for _, seed := range flowtest.RandomSeeds(t, 4) {
		fake := NewFake()
		opts := randomOptions()
		opts.Kernel = fake
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		buckets := map[bool]int{}
		flowtest.ReplayRandom(t, seed, 150, flowtest.RandomMode{
			Partial: func(req proxier.SyncRequest) (string, error) {
				_, err := p.Sync(ctx, req)
				ok, _ := fake.ChainExists(ctx, tableNAT, level1Chain(0))
				buckets[ok]++
				return dump(t, fake), err
			},
			Full: func(snap *proxier.Snapshot) (string, error) {
				ref := NewFake()
				ropts := randomOptions()
				ropts.Kernel = ref
				rp, err := New(ropts)
				if err == nil {
					_, err = rp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true})
				}
				return dump(t, ref), err
			},
		})
		if buckets[true] == 0 || buckets[false] == 0 {
			t.Errorf("seed %d: layouts seen %v, want both", seed, buckets)
		}
	}
}

// TestKernelRandomPartialEqualsFull is the same against the real
// iptables-restore: every few partial syncs, iptables-save of the node
// equals that of a fresh full sync in another namespace.
func TestKernelRandomPartialEqualsFull(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	ctx := context.Background()
	newNS := func(name string) (*Proxier, Kernel) {
		k, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv4, Netns: testrig.NewNetns(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		opts := randomOptions()
		opts.Kernel = k
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return p, k
	}
	p, k := newNS("rnd")
	flowtest.ReplayRandom(t, 42, 40, flowtest.RandomMode{
		Partial: func(req proxier.SyncRequest) (string, error) {
			_, err := p.Sync(ctx, req)
			return ourRules(t, k), err
		},
		Full: func(snap *proxier.Snapshot) (string, error) {
			rp, rk := newNS("rndref")
			_, err := rp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true})
			return ourRules(t, rk), err
		},
		Every: 4,
	})
}
