package main

import (
	"context"
	"sync"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// outage is the kube-apiserver outage's timeline, read by the probes and
// the churn while it happens.
type outage struct {
	mu                         sync.Mutex
	killedAt, backAt, converge time.Time
}

func (o *outage) mark(t *time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	*t = time.Now()
}

// down: killed and not answering yet.
func (o *outage) down() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.killedAt.IsZero() && o.backAt.IsZero()
}

// active: killed and kproxy not converged yet.
func (o *outage) active() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.killedAt.IsZero() && o.converge.IsZero()
}

// excluded: until kproxy converged again, a change made from settle
// before the kill on may not have reached it. Once converged every change
// counts again: convergence means all of them are programmed.
func (o *outage) excluded(last time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.killedAt.IsZero() && o.converge.IsZero() && last.After(o.killedAt.Add(-settle))
}

// outageFigures is what the outage measured.
type outageFigures struct {
	ran                bool
	pid                int
	backAfter          time.Duration // kill → /readyz answers again
	created, converged time.Duration // after the apiserver answers
	convergedOK        bool
	// noPending: first scrape with both pending-change gauges at 0, after
	// the apiserver answers; steadyNoPending: the same wait from moments of
	// steady churn before the kill (churn keeps the gauges busy).
	noPending                    time.Duration
	steadyNoPending              []time.Duration
	rssSteady, rssDown, rssAfter float64
}

// killAPIServer SIGKILLs the rig's kube-apiserver after c.killAfter,
// restarts it after c.down, and times kproxy's recovery.
func (e *env) killAPIServer(ctx context.Context, c config, res *result) {
	killAt := time.Now().Add(c.killAfter)
	if !sleepCtx(ctx, c.killAfter-baselineLead) {
		return
	}
	f := &res.outage
	f.steadyNoPending = e.steadyPendingWaits(ctx, 5)
	if !sleepCtx(ctx, time.Until(killAt)) {
		return
	}
	f.ran, f.pid = true, e.cp.APIServerPID()
	f.rssSteady, _ = e.rss()
	if err := e.cp.KillAPIServer(); err != nil {
		res.note("kill kube-apiserver: " + err.Error())
		return
	}
	e.out.mark(&e.out.killedAt)
	logf("kube-apiserver (pid %d) SIGKILLed; kproxy RSS %.1f MiB", f.pid, f.rssSteady)
	memDown := e.watchRSS(ctx)
	sleepCtx(ctx, c.down)
	if err := e.cp.StartAPIServer(); err != nil {
		memDown()
		res.note("restart kube-apiserver: " + err.Error())
		return
	}
	e.out.mark(&e.out.backAt)
	f.rssDown = memDown()
	f.backAfter = e.out.backAt.Sub(e.out.killedAt)
	logf("kube-apiserver answers again (pid %d) at %s, %v after the kill",
		e.cp.APIServerPID(), e.out.backAt.UTC().Format("15:04:05.000"), f.backAfter.Round(100*time.Millisecond))
	memAfter := e.watchRSS(ctx)
	e.timeRecovery(ctx, f)
	sleepCtx(ctx, time.Minute)
	f.rssAfter = memAfter()
	logf("RSS steady %.1f, max while down %.1f, max from the restart to 60 s after convergence %.1f MiB", f.rssSteady, f.rssDown, f.rssAfter)
}

// timeRecovery creates the marker Service right after the apiserver
// answers and times until its ClusterIP answers: kproxy has converged then.
// The marker's Service and slice are written after every change made
// before the return, each watch delivers its events in order and a sync
// takes every change received, so the sync that programs the marker
// programs all of those too (the churn probes check it from then on).
func (e *env) timeRecovery(ctx context.Context, f *outageFigures) {
	back, deadline := e.out.backAt, e.out.backAt.Add(3*time.Minute)
	for err := e.apply(ctx, markerName, markerIP, e.pods[0]); err != nil; err = e.apply(ctx, markerName, markerIP, e.pods[0]) {
		if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
	f.created = time.Since(back)
	ns := e.topo.Node(1).Pods[0].Netns
	for {
		if r, err := testrig.ProbeTCP(ns, markerIP+":80", 250*time.Millisecond); err == nil && r.Name == e.pods[0] {
			break
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
	f.converged, f.convergedOK = time.Since(back), true
	e.out.mark(&e.out.converge)
	logf("kproxy converged %v after the apiserver answered (marker created %v)",
		f.converged.Round(10*time.Millisecond), f.created.Round(10*time.Millisecond))
	if d, ok := e.waitNoPending(ctx, deadline); ok {
		f.noPending = d + f.converged
		logf("pending-change gauges first read 0 at %v", f.noPending.Round(10*time.Millisecond))
	}
}

// baselineLead: the steady-churn baseline starts this long before the kill.
const baselineLead = 20 * time.Second

// steadyWaitLimit bounds each wait of the steady-churn baseline.
const steadyWaitLimit = 10 * time.Second

// steadyPendingWaits measures, n times 2 s apart during steady churn, how
// long a scrape loop waits for both pending-change gauges to read 0: the
// baseline for the same figure after the outage.
func (e *env) steadyPendingWaits(ctx context.Context, n int) []time.Duration {
	var waits []time.Duration
	for range n {
		d, ok := e.waitNoPending(ctx, time.Now().Add(steadyWaitLimit))
		if !ok {
			d = -1 // not within the limit
		}
		waits = append(waits, d)
		if !sleepCtx(ctx, 2*time.Second) {
			break
		}
	}
	return waits
}

// waitNoPending scrapes kproxy every 100 ms until both of its
// pending-change gauges read 0 and returns how long that took.
func (e *env) waitNoPending(ctx context.Context, deadline time.Time) (time.Duration, bool) {
	start := time.Now()
	for {
		if m, err := scrape(e.topo.Node(1).Netns); err == nil &&
			m["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0 && m["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] == 0 {
			return time.Since(start), true
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 100*time.Millisecond) {
			return 0, false
		}
	}
}

// watchRSS samples kproxy's RSS every second until the returned function
// is called; that returns the maximum.
func (e *env) watchRSS(ctx context.Context) func() float64 {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan float64)
	go func() {
		var peak float64
		for {
			if r, err := e.rss(); err == nil {
				peak = max(peak, r)
			}
			if !sleepCtx(ctx, time.Second) {
				done <- peak
				return
			}
		}
	}()
	return func() float64 { cancel(); return <-done }
}

// sleepCtx sleeps d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
