package proxier

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// waitFor polls cond, stepping the fake clock only through the runner's
// own timers, so no test depends on wall-clock timing.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunnerCoalescesAndRespectsMinInterval(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	var runs atomic.Int32
	r := NewRunner(func() error { runs.Add(1); return nil }, time.Second, 30*time.Second, time.Second, clk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	r.Request()
	waitFor(t, func() bool { return runs.Load() == 1 })
	// A burst while the runner waits out minInterval becomes one run.
	for range 10 {
		r.Request()
	}
	waitFor(t, clk.HasWaiters)
	time.Sleep(10 * time.Millisecond)
	if runs.Load() != 1 {
		t.Fatalf("ran %d times before minInterval passed", runs.Load())
	}
	clk.Step(time.Second)
	waitFor(t, func() bool { return runs.Load() == 2 })
	clk.Step(time.Second)
	time.Sleep(10 * time.Millisecond)
	if runs.Load() != 2 {
		t.Fatalf("burst was not coalesced: %d runs", runs.Load())
	}
	// maxInterval forces a run with no request.
	clk.Step(30 * time.Second)
	waitFor(t, func() bool { return runs.Load() == 3 })
}

func TestRunnerRetriesWithBackoff(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	var runs atomic.Int32
	r := NewRunner(func() error {
		if runs.Add(1) <= 2 {
			return errors.New("boom")
		}
		return nil
	}, 0, time.Hour, time.Second, clk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.Request()
	waitFor(t, func() bool { return runs.Load() == 1 })
	waitFor(t, clk.HasWaiters)
	clk.Step(time.Second) // first retry after 1s
	waitFor(t, func() bool { return runs.Load() == 2 })
	waitFor(t, clk.HasWaiters)
	clk.Step(time.Second) // second retry needs 2s
	time.Sleep(10 * time.Millisecond)
	if runs.Load() != 2 {
		t.Fatal("backoff did not double")
	}
	clk.Step(time.Second)
	waitFor(t, func() bool { return runs.Load() == 3 })
}

// minInterval counts from the start of a run: a run that took longer than
// minInterval is followed at once by a requested one.
func TestRunnerMinIntervalCountsFromRunStart(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	var runs atomic.Int32
	r := NewRunner(func() error {
		if runs.Add(1) == 1 {
			clk.Step(2 * time.Second) // a slow first sync
		}
		return nil
	}, time.Second, time.Hour, time.Second, clk)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.Request()
	waitFor(t, func() bool { return runs.Load() == 1 })
	r.Request()
	// No clock step: the second run must not wait another minInterval.
	waitFor(t, func() bool { return runs.Load() == 2 })
}
