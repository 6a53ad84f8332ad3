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

// excluded: a change at last may not have reached kproxy before the kill
// (it settles within settle), or was made before kproxy converged again.
func (o *outage) excluded(last time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.killedAt.IsZero() && last.After(o.killedAt.Add(-settle)) && (o.converge.IsZero() || last.Before(o.converge))
}

// outageFigures is what the outage measured.
type outageFigures struct {
	ran                          bool
	pid                          int
	backAfter                    time.Duration // kill → /readyz answers again
	created, answered, converged time.Duration // after the apiserver answers
	convergedOK                  bool
	rssSteady, rssDown, rssAfter float64
}

// killAPIServer SIGKILLs the rig's kube-apiserver after c.killAfter,
// restarts it after c.down, and times kproxy's recovery.
func (e *env) killAPIServer(ctx context.Context, c config, res *result) {
	if !sleepCtx(ctx, c.killAfter) {
		return
	}
	f := &res.outage
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
	logf("kube-apiserver answers again (pid %d), %v after the kill", e.cp.APIServerPID(), f.backAfter.Round(100*time.Millisecond))
	memAfter := e.watchRSS(ctx)
	e.timeRecovery(ctx, f)
	sleepCtx(ctx, time.Minute)
	f.rssAfter = memAfter()
	logf("RSS steady %.1f, max while down %.1f, max from the restart to 60 s after convergence %.1f MiB", f.rssSteady, f.rssDown, f.rssAfter)
}

// timeRecovery creates the marker Service right after the apiserver
// answers and times until its ClusterIP answers and kproxy's metrics show
// no pending change.
func (e *env) timeRecovery(ctx context.Context, f *outageFigures) {
	back, deadline := e.out.backAt, e.out.backAt.Add(3*time.Minute)
	for err := e.apply(ctx, markerName, markerIP, e.pods[0]); err != nil; err = e.apply(ctx, markerName, markerIP, e.pods[0]) {
		if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
	f.created = time.Since(back)
	ns := e.topo.Node(1).Pods[0].Netns
	for f.answered == 0 {
		if r, err := testrig.ProbeTCP(ns, markerIP+":80", 250*time.Millisecond); err == nil && r.Name == e.pods[0] {
			f.answered = time.Since(back)
		} else if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
	for {
		if m, err := scrape(e.topo.Node(1).Netns); err == nil &&
			m["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0 && m["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] == 0 {
			f.converged, f.convergedOK = time.Since(back), true
			e.out.mark(&e.out.converge)
			logf("kproxy converged %v after the apiserver answered (marker created %v, answered %v)",
				f.converged.Round(10*time.Millisecond), f.created.Round(10*time.Millisecond), f.answered.Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 100*time.Millisecond) {
			return
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
