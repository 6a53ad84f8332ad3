package proxier

import (
	"context"
	"time"
)

// SliceWait is how long a sync that starts right after a quiet spell waits
// for the first EndpointSlice of a new Service that selects pods. The
// Service and its slice are written moments apart (by the user, then by
// the endpointslice controller); syncing between the two programs a
// Service that cannot take traffic yet, and min-sync-period then holds its
// endpoints back for a whole period (as kube-proxy's new Services are).
// The wait is counted from the first pending change and ends when the
// slices are in: a round whose first change has waited SliceWait already
// (under churn, min-sync-period held it back) does not wait at all.
const SliceWait = 200 * time.Millisecond

// awaitsSlices tells whether a pending change is a Service that selects
// pods, is in no family's last snapshot and has no EndpointSlice yet.
func (t *Tracker) awaitsSlices() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n := range t.dirty {
		p, ok := t.services[n]
		if !ok || !p.selector || len(t.slices[n]) > 0 {
			continue
		}
		built := false
		for _, f := range t.families {
			_, in := t.built[f][n]
			built = built || in
		}
		if !built {
			return true
		}
	}
	return false
}

// awaitSlices waits, before a partial round's checkout, until no new
// Service awaits its EndpointSlices or SliceWait has passed since the
// first pending change. Every queued change wakes it; one that makes the
// round full (a canary alarm, a forced full sync) ends the wait.
func (l *Loop) awaitSlices(ctx context.Context) {
	l.mu.Lock()
	deadline := l.pendingSince.Add(SliceWait)
	l.mu.Unlock()
	for {
		rest := deadline.Sub(l.opts.Clock.Now())
		if rest <= 0 || l.fullDue() || !l.tracker.awaitsSlices() {
			return
		}
		timer := l.opts.Clock.NewTimer(rest)
		select {
		case <-ctx.Done():
		case <-timer.C():
		case <-l.queued:
		}
		timer.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

// wake wakes awaitSlices.
func (l *Loop) wake() {
	select {
	case l.queued <- struct{}{}:
	default:
	}
}
