package proxier

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func selecting(s *v1.Service) { s.Spec.Selector = map[string]string{"app": s.Name} }

// startedLoop runs a loop with min-sync-period minSync on a fake clock
// and waits for its first (full) sync of Service ns/a.
func startedLoop(t *testing.T, minSync time.Duration, more ...func(*LoopOptions)) (*Loop, *recordingBackend, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &recordingBackend{}
	opts := LoopOptions{Mode: "test", MinSyncPeriod: minSync, SyncPeriod: time.Hour,
		Backends: map[Family]Proxier{IPv4: be}, Clock: clk}
	for _, m := range more {
		m(&opts)
	}
	l := NewLoop(NewTracker("me", []Family{IPv4}, nil, clk.Now()), opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go l.Run(ctx)
	l.OnService(nil, svc("ns", "a", "10.96.0.1", selecting))
	l.OnSynced()
	waitFor(t, func() bool { return be.count() == 1 })
	return l, be, clk
}

// idle gives the loop real time to sync if it were going to.
func idle() { time.Sleep(30 * time.Millisecond) }

// A new Service that selects pods is synced with its first EndpointSlice,
// as soon as the slice comes, not before it and a min-sync-period later;
// and no empty sync follows a min-sync-period later.
func TestLoopSyncsNewServiceWithItsSlice(t *testing.T) {
	l, be, clk := startedLoop(t, time.Second)
	clk.Step(time.Second) // the first sync's min-sync-period is over
	l.OnService(nil, svc("ns", "b", "10.96.0.2", selecting))
	idle() // the fake clock stands still: only the slice can end the wait
	if n := be.count(); n != 1 {
		t.Fatalf("%d syncs before b's slice came, want 1", n)
	}
	l.OnEndpointSlice(nil, slice("ns", "b", "b-1", epSpec{ip: "10.244.0.5", ready: ptr.To(true)}))
	waitFor(t, func() bool { return be.count() == 2 })
	r := be.last()
	b := r.Snapshot.Services[key("ns", "b")]
	if r.Full || b == nil || len(b.Ports) != 1 || len(b.Ports[0].Endpoints) != 1 {
		t.Fatalf("sync after b's slice: want a partial one with b's endpoint, got full=%v b=%+v", r.Full, b)
	}
	clk.Step(time.Second)
	idle()
	if n := be.count(); n != 2 {
		t.Errorf("%d syncs a min-sync-period later, want 2 (nothing changed)", n)
	}
}

// A change that cannot wait ends the wait: b deleted, or a full sync
// forced (which runs as a full round, BeforeFullSync first).
func TestLoopSliceWaitEndsEarly(t *testing.T) {
	var fullRounds atomic.Int32
	l, be, _ := startedLoop(t, 0, func(o *LoopOptions) {
		o.BeforeFullSync = func() func() { fullRounds.Add(1); return func() {} }
	})
	b := svc("ns", "b", "10.96.0.2", selecting)
	l.OnService(nil, b)
	idle()
	l.OnService(b, nil)
	waitFor(t, func() bool { return be.count() == 2 })

	l.OnService(nil, svc("ns", "c", "10.96.0.3", selecting))
	idle()
	l.ForceFullSync()
	waitFor(t, func() bool { return be.count() == 3 })
	if r := be.last(); !r.Full || fullRounds.Load() != 2 {
		t.Errorf("a forced full sync during the wait: full %v, %d full rounds; want true, 2", r.Full, fullRounds.Load())
	}
}

// The wait is bounded: a Service whose slice does not come is synced
// SliceWait after it was seen.
func TestLoopSliceWaitIsBounded(t *testing.T) {
	l, be, clk := startedLoop(t, 0)
	l.OnService(nil, svc("ns", "b", "10.96.0.2", selecting))
	idle()
	clk.Step(SliceWait - time.Millisecond)
	idle()
	if n := be.count(); n != 1 {
		t.Fatalf("%d syncs before SliceWait passed, want 1", n)
	}
	clk.Step(time.Millisecond)
	waitFor(t, func() bool { return be.count() == 2 })
	if r := be.last(); !r.Changed.Has(key("ns", "b")) {
		t.Fatalf("sync after SliceWait: changed %v, want ns/b", r.Changed)
	}
}

// Nothing else waits: a Service without a selector (no controller writes
// its slices), a known Service's change, a new Service whose slice came
// first.
func TestLoopSyncsOtherChangesAtOnce(t *testing.T) {
	l, be, _ := startedLoop(t, 0)
	l.OnService(nil, svc("ns", "manual", "10.96.0.3"))
	waitFor(t, func() bool { return be.count() == 2 })
	l.OnEndpointSlice(nil, slice("ns", "a", "a-1", epSpec{ip: "10.244.0.4", ready: ptr.To(true)}))
	waitFor(t, func() bool { return be.count() == 3 })
	l.OnEndpointSlice(nil, slice("ns", "c", "c-1", epSpec{ip: "10.244.0.6", ready: ptr.To(true)}))
	waitFor(t, func() bool { return be.count() == 4 })
	l.OnService(nil, svc("ns", "c", "10.96.0.4", selecting))
	waitFor(t, func() bool { return be.count() == 5 })
}

// A change pending longer than SliceWait (min-sync-period held it: the
// round is late already) does not wait.
func TestLoopLateRoundDoesNotWait(t *testing.T) {
	l, be, clk := startedLoop(t, time.Second)
	l.OnService(nil, svc("ns", "d", "10.96.0.5", selecting)) // within a second of the first sync
	idle()
	clk.Step(time.Second) // min-sync-period over, the change a second old
	waitFor(t, func() bool { return be.count() == 2 })
}

// gatedBackend holds every sync until released.
type gatedBackend struct {
	recordingBackend
	entered, release chan struct{}
}

func (b *gatedBackend) Sync(ctx context.Context, req SyncRequest) (SyncResult, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.recordingBackend.Sync(ctx, req)
}

// A change that comes while a sync runs (after its checkout) gets a sync
// of its own: dropping the requests made before the checkout loses none.
func TestLoopChangeDuringSyncIsSynced(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &gatedBackend{entered: make(chan struct{}), release: make(chan struct{})}
	l := NewLoop(NewTracker("me", []Family{IPv4}, nil, clk.Now()), LoopOptions{Mode: "test",
		SyncPeriod: time.Hour, Backends: map[Family]Proxier{IPv4: be}, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	enter := func() {
		t.Helper()
		select {
		case <-be.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("no sync")
		}
	}
	l.OnService(nil, svc("ns", "a", "10.96.0.1"))
	l.OnSynced()
	enter()
	l.OnService(nil, svc("ns", "b", "10.96.0.2"))
	be.release <- struct{}{}
	enter()
	be.release <- struct{}{}
	waitFor(t, func() bool { return be.count() == 2 })
	if r := be.last(); !r.Changed.Has(key("ns", "b")) {
		t.Fatalf("second sync: changed %v, want ns/b", r.Changed)
	}
}
