package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/kproxy/kproxy/bench/measure"
)

// pollEvery is how often a wait scrapes the metrics.
const pollEvery = 50 * time.Millisecond

// waitMetrics scrapes until cond holds, the proxy exits or timeout passes,
// and returns the matching sample. It reports progress every 15 s.
func (h *harness) waitMetrics(ctx context.Context, sc *measure.Scraper, p Proc, what string, timeout time.Duration, cond func(measure.Sample) bool) (measure.Sample, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start, lastLog := time.Now(), time.Now()
	var lastErr error
	for {
		s, err := sc.Scrape(ctx)
		if err == nil && cond(s) {
			return s, nil
		}
		if err != nil {
			lastErr = err
		}
		if exited, werr := p.Exited(); exited {
			return s, fmt.Errorf("proxy exited (%v) while waiting for %s; last lines:\n%s", werr, what, p.Tail(15))
		}
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			h.log.logf("    still waiting for %s (%s)", what, time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("no %s after %s", what, time.Since(start).Round(time.Second))
			if lastErr != nil {
				msg += fmt.Sprintf(" (last scrape error: %v)", lastErr)
			}
			err := fmt.Errorf("%s; proxy log tail:\n%s", msg, p.Tail(15))
			if parent.Err() == nil {
				err = &overLimitError{limit: timeout, err: err}
			}
			return s, err
		case <-time.After(pollEvery):
		}
	}
}

// overLimitError is a wait that ran out of time (not cancelled): the report
// shows "> limit" for it rather than nothing.
type overLimitError struct {
	limit time.Duration
	err   error
}

func (e *overLimitError) Error() string { return e.err.Error() }
func (e *overLimitError) Unwrap() error { return e.err }

// sinceUnix returns unix-seconds ts minus t0 in seconds, or the fallback if
// ts is not after t0 (the proxies stamp their sync metrics with the host's
// wall clock, which is more precise than the scrape that saw them).
func sinceUnix(ts float64, t0 time.Time, fallback time.Time) float64 {
	d := ts - float64(t0.UnixNano())/1e9
	if d > 0 && ts <= float64(fallback.UnixNano())/1e9+1 {
		return d
	}
	return fallback.Sub(t0).Seconds()
}
