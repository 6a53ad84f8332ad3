package proxier

import (
	"context"
	"time"

	"k8s.io/utils/clock"
)

// Runner calls a function when asked, starting runs at most once per
// minInterval and at least once per maxInterval, coalescing bursts of requests into one run.
// When the function fails it is retried with exponential backoff, from
// retryMin up to maxInterval.
type Runner struct {
	fn          func() error
	minInterval time.Duration
	maxInterval time.Duration
	retryMin    time.Duration
	clock       clock.WithTicker
	requests    chan struct{}
}

// NewRunner builds a runner; it does nothing until Run is called.
func NewRunner(fn func() error, minInterval, maxInterval, retryMin time.Duration, clk clock.WithTicker) *Runner {
	if retryMin <= 0 {
		retryMin = time.Second
	}
	return &Runner{fn: fn, minInterval: minInterval, maxInterval: maxInterval, retryMin: retryMin, clock: clk, requests: make(chan struct{}, 1)}
}

// Request asks for a run; it never blocks. Requests made while a run is in
// progress or waiting out minInterval are merged into the next run.
func (r *Runner) Request() {
	select {
	case r.requests <- struct{}{}:
	default:
	}
}

// forgetRequest drops a pending request: the running function is about to
// read the state the request was made for (a request made after this one
// still asks for another run).
func (r *Runner) forgetRequest() {
	select {
	case <-r.requests:
	default:
	}
}

// Run calls the function on request, periodically and on retry, until
// ctx is done.
func (r *Runner) Run(ctx context.Context) {
	periodic := r.clock.NewTimer(r.maxInterval)
	defer periodic.Stop()
	var retry clock.Timer
	retryC := func() <-chan time.Time {
		if retry == nil {
			return nil
		}
		return retry.C()
	}
	backoff := r.retryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.requests:
		case <-periodic.C():
		case <-retryC():
		}
		if retry != nil {
			retry.Stop()
			retry = nil
		}
		start := r.clock.Now()
		err := r.fn()
		if err != nil {
			retry = r.clock.NewTimer(backoff)
			backoff = min(backoff*2, r.maxInterval)
		} else {
			backoff = r.retryMin
		}
		periodic.Stop()
		periodic = r.clock.NewTimer(r.maxInterval)
		// minInterval is counted from the start of the run, as kube-proxy
		// does: a Service and its EndpointSlice arriving together cost one
		// minInterval plus a sync, not a sync, a minInterval and a sync.
		if rest := r.minInterval - r.clock.Since(start); rest > 0 {
			wait := r.clock.NewTimer(rest)
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C():
			}
		}
	}
}
