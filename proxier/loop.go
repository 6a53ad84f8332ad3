package proxier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networking "k8s.io/api/networking/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// HealthRecorder is told when an update is queued and when a family's
// rules are in sync; /healthz is computed from it.
type HealthRecorder interface {
	QueuedUpdate(Family)
	Updated(Family)
}

// StaleFlowCleaner deletes conntrack entries that a sync made stale
// (UDP flows to endpoints that are gone). redirects are the sync's
// SyncResult.Redirects: flows answered by those listeners are live.
type StaleFlowCleaner interface {
	CleanStaleFlows(ctx context.Context, snap *Snapshot, redirects Redirects) (deleted int, err error)
}

// AfterSync is called after every successful sync of one family, e.g. to
// update the health check node port servers.
type AfterSync func(ctx context.Context, snap *Snapshot)

// LoopOptions configures a Loop.
type LoopOptions struct {
	Mode           string
	MinSyncPeriod  time.Duration
	SyncPeriod     time.Duration
	FullSyncPeriod time.Duration // 0: one hour
	CanaryInterval time.Duration // 0: the sync period, at most MaxCanaryInterval
	Backends       map[Family]Proxier
	Conntrack      map[Family]StaleFlowCleaner // nil entries: no cleanup
	Health         HealthRecorder              // may be nil
	AfterSync      []AfterSync
	// BeforeFullSync, if set, runs before a round of syncs in which some
	// family is due a full sync (its first, after a failure or a canary
	// alarm, the full sync period: before the checkout; a Node change:
	// after it); the function it returns runs when the round's syncs are
	// done, before AfterFullSync. (A backend that escalates a partial
	// sync on its own is not foreseen.)
	BeforeFullSync func() (done func())
	// AfterFullSync, if set, runs after a round of syncs in which some
	// family did a successful full sync.
	AfterFullSync func()
	Metrics       *Metrics
	Clock         clock.WithTicker
}

// MaxCanaryInterval bounds how long someone else's flush of our rules goes
// unnoticed. kube-proxy checks once per sync period (30 s by default, often
// minutes in large clusters); a canary check costs one small list per table,
// so kproxy checks at least this often and traffic comes back within seconds
// of a firewall reload.
const MaxCanaryInterval = 5 * time.Second

// Loop is the sync loop: it feeds informer events into a Tracker and runs
// each family's Proxier from one Runner.
type Loop struct {
	opts    LoopOptions
	tracker *Tracker
	runner  *Runner
	// checkout is tracker.Checkout; a test makes it take (fake) time.
	checkout func() Checkout

	mu       sync.Mutex
	ctx      context.Context
	needFull map[Family]bool
	synced   map[Family]bool // families with at least one successful sync
	lastFull time.Time
	onSync   []func()
	// pendingSince is when the first change not yet checked out came.
	pendingSince time.Time
	// queued wakes awaitSlices when a change comes.
	queued chan struct{}
}

// NewLoop builds a loop; nothing runs until Run.
func NewLoop(tracker *Tracker, opts LoopOptions) *Loop {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.FullSyncPeriod == 0 {
		opts.FullSyncPeriod = time.Hour
	}
	if opts.CanaryInterval == 0 {
		opts.CanaryInterval = min(opts.SyncPeriod, MaxCanaryInterval)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	l := &Loop{opts: opts, tracker: tracker, checkout: tracker.Checkout, ctx: context.Background(),
		needFull: map[Family]bool{}, synced: map[Family]bool{}, queued: make(chan struct{}, 1)}
	for f := range opts.Backends {
		l.needFull[f] = true // the first sync of every family is full
	}
	l.runner = NewRunner(l.sync, opts.MinSyncPeriod, opts.SyncPeriod, time.Second, opts.Clock)
	return l
}

// Tracker returns the loop's change tracker.
func (l *Loop) Tracker() *Tracker { return l.tracker }

// OnService, OnEndpointSlice and OnNode record a change and queue a sync.
func (l *Loop) OnService(old, cur *v1.Service) { l.tracker.OnService(old, cur); l.queue() }

// OnTrackedService: see OnService.
func (l *Loop) OnTrackedService(old, cur *TrackedService) {
	l.tracker.OnTrackedService(old, cur)
	l.queue()
}

// OnTrackedSlice: see OnService.
func (l *Loop) OnTrackedSlice(old, cur *TrackedSlice) {
	l.tracker.OnTrackedSlice(old, cur)
	l.queue()
}

// OnEndpointSlice: see OnService.
func (l *Loop) OnEndpointSlice(old, cur *discovery.EndpointSlice) {
	l.tracker.OnEndpointSlice(old, cur)
	l.queue()
}

// OnNode: see OnService.
func (l *Loop) OnNode(cur *v1.Node) { l.tracker.OnNode(cur); l.queue() }

// OnServiceCIDR: see OnService.
func (l *Loop) OnServiceCIDR(old, cur *networking.ServiceCIDR) {
	l.tracker.OnServiceCIDR(old, cur)
	l.queue()
}

// OnSynced is called when the informers' initial lists are in.
func (l *Loop) OnSynced() {
	l.tracker.SetServicesSynced()
	l.tracker.SetSlicesSynced()
	l.queue()
}

// ForceFullSync makes the next sync of every family a full one and queues it.
func (l *Loop) ForceFullSync() {
	l.mu.Lock()
	for f := range l.needFull {
		l.needFull[f] = true
	}
	l.mu.Unlock()
	l.queue()
}

// SyncNow queues a sync.
func (l *Loop) SyncNow() { l.queue() }

func (l *Loop) queue() {
	now := l.opts.Clock.Now()
	l.mu.Lock()
	if l.pendingSince.IsZero() {
		l.pendingSince = now
	}
	l.mu.Unlock()
	families := make([]Family, 0, len(l.opts.Backends))
	for f := range l.opts.Backends {
		families = append(families, f)
		if l.opts.Health != nil {
			l.opts.Health.QueuedUpdate(f)
		}
	}
	s, e := l.tracker.Pending()
	l.opts.Metrics.RecordQueued(families, now, s, e)
	// Before the initial lists are in a run would do nothing but start a
	// min-sync-period wait that delays the first real sync; OnSynced
	// queues that one.
	if l.tracker.Synced() {
		l.runner.Request()
	}
	l.wake()
}

// Run runs the sync loop, the canary monitor and the backends' background
// work until ctx is done.
func (l *Loop) Run(ctx context.Context) {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
	for _, b := range l.opts.Backends {
		if bg, ok := b.(Background); ok {
			go bg.Run(ctx)
		}
	}
	// The ticker is created before Run returns control, so that no tick of
	// the (possibly fake) clock is missed.
	go l.monitorCanaries(ctx, l.opts.Clock.NewTicker(l.opts.CanaryInterval))
	l.runner.Run(ctx)
}

// monitorCanaries checks, once per canary interval, whether someone flushed
// our rules, and forces a full resync when they did.
func (l *Loop) monitorCanaries(ctx context.Context, t clock.Ticker) {
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		for f, b := range l.opts.Backends {
			c, ok := b.(Canary)
			l.mu.Lock()
			synced := l.synced[f]
			l.mu.Unlock()
			if !ok || !synced {
				continue // before the first sync there is no canary yet
			}
			flushed, err := c.Flushed(ctx)
			if err != nil {
				klog.V(2).InfoS("Could not check the canary", "ipFamily", f, "err", err)
				continue
			}
			if flushed {
				klog.InfoS("Our rules were flushed by someone else, forcing a full resync", "ipFamily", f)
				l.mu.Lock()
				l.needFull[f] = true
				l.mu.Unlock()
				l.queue()
			}
		}
	}
}

// sync is the Runner's function: checkout, then sync every family.
func (l *Loop) sync() error {
	if !l.tracker.Synced() {
		return nil
	}
	ctx := l.startSync()
	if !l.fullDue() {
		l.awaitSlices(ctx)
	}
	var fullRoundDone func()
	if l.fullDue() {
		fullRoundDone = l.beforeFullSync()
	}
	// Whatever was queued until now is in this checkout: no second run for
	// it (a min-sync-period later, holding back the next real change).
	l.runner.forgetRequest()
	l.mu.Lock()
	l.pendingSince = time.Time{}
	l.mu.Unlock()
	start := l.opts.Clock.Now()
	c := l.checkout()
	checkout := l.opts.Clock.Since(start)
	if fullRoundDone == nil && c.NodeChanged { // every family's sync is full
		fullRoundDone = l.beforeFullSync()
	}
	l.opts.Metrics.RecordCheckout(&c)
	l.opts.Metrics.RecordPending(l.tracker.Pending())

	var errs []error
	anyFull := false
	for _, f := range l.tracker.Families() {
		b := l.opts.Backends[f]
		if b == nil {
			continue
		}
		full, err := l.syncFamily(ctx, f, b, &c, checkout)
		if err != nil {
			errs = append(errs, err)
		}
		anyFull = anyFull || full
	}
	if fullRoundDone != nil {
		fullRoundDone()
	}
	if anyFull && l.opts.AfterFullSync != nil {
		l.opts.AfterFullSync()
	}
	return errors.Join(errs...)
}

// fullDue tells whether some family's next sync is full (a Node change,
// known only after the checkout, makes every family's full too).
func (l *Loop) fullDue() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, full := range l.needFull {
		if full {
			return true
		}
	}
	return false
}

// beforeFullSync runs BeforeFullSync and returns what to run when the
// round is done.
func (l *Loop) beforeFullSync() (done func()) {
	if l.opts.BeforeFullSync == nil {
		return func() {}
	}
	return l.opts.BeforeFullSync()
}

// startSync returns the context syncs run in and, once per full sync
// period, asks every family for a full sync.
func (l *Loop) startSync() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Clock.Now()
	if now.Sub(l.lastFull) >= l.opts.FullSyncPeriod {
		for f := range l.needFull {
			l.needFull[f] = true
		}
		l.lastFull = now
	}
	return l.ctx
}

// syncFamily syncs family f and records everything it produced; the
// timings span what kube-proxy's syncProxyRules does, from the checkout
// (which took checkout) through the conntrack cleanup. fullDone tells
// whether it was a successful full sync.
func (l *Loop) syncFamily(ctx context.Context, f Family, b Proxier, c *Checkout, checkout time.Duration) (fullDone bool, err error) {
	snap := c.Snapshots[f]
	r := &SyncRecord{Family: f, Mode: l.opts.Mode, Services: len(snap.Services), ChangedServices: len(c.Changed[f]),
		EndpointChanges: c.EndpointChanges, Triggers: c.TriggerTimes[f]}
	r.Timings = SyncTimings{Checkout: checkout, Start: l.opts.Clock.Now()}
	full := l.takeFullSyncRequest(f, c.NodeChanged)
	r.Result, r.Err = b.Sync(ctx, SyncRequest{Snapshot: snap, Changed: c.Changed[f], Full: full})
	r.Result.Full = full || r.Result.Full
	r.Timings.Programmed = l.opts.Clock.Now()
	if r.Err != nil {
		l.syncFailed(f)
	} else {
		l.programmed(f)
		r.StaleFlows = l.cleanStaleFlows(ctx, f, snap, r.Result.Redirects)
		for _, hook := range l.opts.AfterSync {
			hook(ctx, snap)
		}
	}
	r.Timings.Done = l.opts.Clock.Now()
	l.opts.Metrics.RecordSync(r, b)
	r.logSummary()
	if r.Err != nil {
		return false, fmt.Errorf("sync %s: %w", f, r.Err)
	}
	return r.Result.Full, nil
}

// takeFullSyncRequest tells whether f's next sync must be full and clears
// the request. It is consumed before syncing: a request for a full sync
// that arrives while this one runs must survive it.
func (l *Loop) takeFullSyncRequest(f Family, nodeChanged bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	full := l.needFull[f] || nodeChanged
	l.needFull[f] = false
	return full
}

// syncFailed makes f's next sync full and tells the health check that
// f's rules are not in sync.
func (l *Loop) syncFailed(f Family) {
	l.mu.Lock()
	l.needFull[f] = true
	l.mu.Unlock()
	if l.opts.Health != nil {
		// Like a queued change, this turns /healthz and /livez unhealthy
		// if no sync succeeds within the health timeout (kube-proxy only
		// counts queued changes, so failing periodic syncs left it
		// healthy).
		l.opts.Health.QueuedUpdate(f)
	}
}

// programmed records that f's rules are in sync.
func (l *Loop) programmed(f Family) {
	l.mu.Lock()
	l.synced[f] = true
	l.mu.Unlock()
	if l.opts.Health != nil {
		l.opts.Health.Updated(f)
	}
}

// cleanStaleFlows deletes the conntrack entries the sync made stale; nil
// when f has no cleaner. A failure is logged: the rules are programmed.
func (l *Loop) cleanStaleFlows(ctx context.Context, f Family, snap *Snapshot, redirects Redirects) *StaleFlowCleanup {
	cl := l.opts.Conntrack[f]
	if cl == nil {
		return nil
	}
	start := l.opts.Clock.Now()
	n, err := cl.CleanStaleFlows(ctx, snap, redirects)
	if err != nil {
		klog.ErrorS(err, "Conntrack cleanup failed", "ipFamily", f)
	}
	return &StaleFlowCleanup{Took: l.opts.Clock.Since(start), Deleted: n}
}
