package proxier

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// recordingBackend records every sync request and can be told to fail.
type recordingBackend struct {
	mu       sync.Mutex
	reqs     []SyncRequest
	failNext bool
	flushed  bool
}

func (b *recordingBackend) Sync(_ context.Context, req SyncRequest) (SyncResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs = append(b.reqs, req)
	if b.failNext {
		b.failNext = false
		return SyncResult{}, errors.New("restore failed")
	}
	return SyncResult{Rules: map[string]int{"nat": len(req.Snapshot.Services)}}, nil
}

func (b *recordingBackend) Cleanup(context.Context) error { return nil }

func (b *recordingBackend) Flushed(context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.flushed
	b.flushed = false
	return f, nil
}

func (b *recordingBackend) last() SyncRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs[len(b.reqs)-1]
}

func (b *recordingBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

func TestLoopFullThenPartialAndRetry(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &recordingBackend{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	tr := NewTracker("me", []Family{IPv4}, nil, clk.Now())
	var afterFull atomic.Int32
	var hooksMu sync.Mutex
	var hooks []string // BeforeFullSync, its done and AfterFullSync, in order
	hook := func(name string) {
		hooksMu.Lock()
		defer hooksMu.Unlock()
		hooks = append(hooks, name)
	}
	before := func() func() {
		hook("before")
		return func() { hook("done") }
	}
	l := NewLoop(tr, LoopOptions{Mode: "test", MinSyncPeriod: 0, SyncPeriod: time.Minute,
		Backends: map[Family]Proxier{IPv4: be}, Metrics: m, Clock: clk, BeforeFullSync: before,
		AfterFullSync: func() { hook("after"); afterFull.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	fullHooks := func(want int32) {
		t.Helper()
		waitFor(t, func() bool { return afterFull.Load() >= want })
		if got := afterFull.Load(); got != want {
			t.Fatalf("AfterFullSync ran %d times, want %d", got, want)
		}
	}

	l.OnService(nil, svc("ns", "a", "10.96.0.1"))
	time.Sleep(20 * time.Millisecond)
	if be.count() != 0 {
		t.Fatal("synced before the informers synced")
	}
	l.OnSynced()
	waitFor(t, func() bool { return be.count() == 1 })
	if r := be.last(); !r.Full || len(r.Snapshot.Services) != 1 {
		t.Fatalf("first sync must be full: %+v", r)
	}
	fullHooks(1)
	l.OnService(nil, svc("ns", "b", "10.96.0.2"))
	waitFor(t, func() bool { return be.count() == 2 })
	if r := be.last(); r.Full || !r.Changed.Has(key("ns", "b")) || len(r.Changed) != 1 {
		t.Fatalf("second sync must be partial with ns/b: %+v", r)
	}
	// A failure is retried as a full sync.
	be.mu.Lock()
	be.failNext = true
	be.mu.Unlock()
	l.OnService(nil, svc("ns", "c", "10.96.0.3"))
	waitFor(t, func() bool { return be.count() == 3 })
	fullHooks(1) // neither the partial sync nor the failed one
	// Step the clock until the retry (due 1s after the failure) has run.
	waitFor(t, func() bool { clk.Step(100 * time.Millisecond); return be.count() == 4 })
	if r := be.last(); !r.Full || len(r.Snapshot.Services) != 3 {
		t.Fatalf("retry must be full: %+v", r)
	}
	fullHooks(2)
	// A Node change, seen at the checkout, makes the sync full.
	l.OnNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "me", Labels: map[string]string{LabelZone: "z9"}}})
	waitFor(t, func() bool { return be.count() == 5 })
	if r := be.last(); !r.Full {
		t.Fatalf("sync after a Node change must be full: %+v", r)
	}
	fullHooks(3)
	// The first sync, the retry and the Node change ran in rounds due a
	// full sync; the failed one was due a partial sync.
	hooksMu.Lock()
	got := strings.Join(hooks, " ")
	hooksMu.Unlock()
	if want := "before done after before done after before done after"; got != want {
		t.Errorf("full sync hooks ran as %q, want %q", got, want)
	}
	if got := testutil.ToFloat64(m.SyncFailures.WithLabelValues("IPv4", "test")); got != 1 {
		t.Errorf("sync failures = %v", got)
	}
	if got := testutil.ToFloat64(m.ServiceChangesTotal); got != 3 {
		t.Errorf("service changes total = %v", got)
	}
}

// The first sync runs as soon as the informers have synced: events seen
// before must not start a min-sync-period wait (a restart in another mode
// is an outage until this sync).
func TestLoopFirstSyncIsNotDelayed(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &recordingBackend{}
	tr := NewTracker("me", []Family{IPv4}, nil, clk.Now())
	l := NewLoop(tr, LoopOptions{Mode: "test", MinSyncPeriod: time.Hour, SyncPeriod: 2 * time.Hour,
		Backends: map[Family]Proxier{IPv4: be}, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)

	l.OnService(nil, svc("ns", "a", "10.96.0.1"))
	time.Sleep(20 * time.Millisecond)
	l.OnSynced() // the fake clock never moves: only an immediate sync passes
	waitFor(t, func() bool { return be.count() == 1 })
	if r := be.last(); !r.Full || len(r.Snapshot.Services) != 1 {
		t.Fatalf("first sync must be full with the Service: %+v", r)
	}
}

// The canary is checked every MaxCanaryInterval however long the sync
// period: only the canary can explain a full sync within that interval.
func TestLoopCanaryCheckedWithinMaxInterval(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &recordingBackend{}
	tr := NewTracker("me", []Family{IPv4}, nil, clk.Now())
	l := NewLoop(tr, LoopOptions{SyncPeriod: time.Hour, Backends: map[Family]Proxier{IPv4: be}, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.OnSynced()
	waitFor(t, func() bool { return be.count() == 1 })
	be.mu.Lock()
	be.flushed = true
	be.mu.Unlock()
	clk.Step(MaxCanaryInterval)
	waitFor(t, func() bool { return be.count() == 2 })
	if !be.last().Full {
		t.Fatal("the sync the canary asked for must be full")
	}
}

func TestLoopCanaryForcesFullSync(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &recordingBackend{}
	tr := NewTracker("me", []Family{IPv4}, nil, clk.Now())
	l := NewLoop(tr, LoopOptions{SyncPeriod: time.Minute, Backends: map[Family]Proxier{IPv4: be}, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.OnSynced()
	waitFor(t, func() bool { return be.count() == 1 })
	l.SyncNow()
	waitFor(t, func() bool { return be.count() == 2 })
	if be.last().Full {
		t.Fatal("second sync should be partial")
	}
	be.mu.Lock()
	be.flushed = true
	be.mu.Unlock()
	clk.Step(time.Minute) // canary monitor tick and the periodic sync
	// The periodic sync and the canary's request may run in either order;
	// one of the syncs after the flush must be full.
	waitFor(t, func() bool {
		be.mu.Lock()
		defer be.mu.Unlock()
		for _, r := range be.reqs[2:] {
			if r.Full {
				return true
			}
		}
		return false
	})
}

// recordingHealth records the HealthRecorder calls in order.
type recordingHealth struct {
	mu     sync.Mutex
	events []string
}

func (h *recordingHealth) QueuedUpdate(f Family) { h.add("queued " + string(f)) }
func (h *recordingHealth) Updated(f Family)      { h.add("updated " + string(f)) }
func (h *recordingHealth) add(e string)          { h.mu.Lock(); h.events = append(h.events, e); h.mu.Unlock() }
func (h *recordingHealth) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// A failed sync leaves an update pending for the health check, also when
// no change was queued (a periodic sync): failing syncs must turn
// /healthz unhealthy after the timeout.
func TestLoopFailedSyncIsPending(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &recordingBackend{}
	hr := &recordingHealth{}
	tr := NewTracker("me", []Family{IPv4}, nil, clk.Now())
	l := NewLoop(tr, LoopOptions{SyncPeriod: time.Minute, Backends: map[Family]Proxier{IPv4: be}, Health: hr, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	l.OnSynced()
	waitFor(t, func() bool { return slices.Equal(hr.get(), []string{"queued IPv4", "updated IPv4"}) })
	be.mu.Lock()
	be.failNext = true
	be.mu.Unlock()
	// The periodic sync, which fails. A step made while the first sync
	// is still being recorded is lost (the runner arms its timer after
	// the sync returns), so step until it has run.
	waitFor(t, func() bool { clk.Step(time.Minute); return be.count() >= 2 })
	waitFor(t, func() bool { return hasPrefix(hr.get(), "queued IPv4", "updated IPv4", "queued IPv4") })
	// The retry succeeds.
	waitFor(t, func() bool { clk.Step(100 * time.Millisecond); return be.count() >= 3 })
	waitFor(t, func() bool { return hasPrefix(hr.get(), "queued IPv4", "updated IPv4", "queued IPv4", "updated IPv4") })
}

func hasPrefix(events []string, want ...string) bool {
	return len(events) >= len(want) && slices.Equal(events[:len(want)], want)
}

// backgroundBackend has work of its own between syncs.
type backgroundBackend struct {
	recordingBackend
	running chan struct{} // closed when Run starts
	stopped chan struct{} // closed when Run returns
}

func (b *backgroundBackend) Run(ctx context.Context) {
	close(b.running)
	<-ctx.Done()
	close(b.stopped)
}

// A backend's background work starts with the loop, not at its first
// sync, and ends with the loop's context.
func TestLoopRunsBackgroundWork(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	be := &backgroundBackend{running: make(chan struct{}), stopped: make(chan struct{})}
	tr := NewTracker("me", []Family{IPv4}, nil, clk.Now())
	l := NewLoop(tr, LoopOptions{SyncPeriod: time.Minute, Backends: map[Family]Proxier{IPv4: be}, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	go l.Run(ctx)
	select {
	case <-be.running:
	case <-time.After(5 * time.Second):
		t.Fatal("background work did not start with the loop")
	}
	if be.count() != 0 {
		t.Fatal("synced before the informers synced")
	}
	cancel()
	select {
	case <-be.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("background work did not stop with the loop's context")
	}
}
