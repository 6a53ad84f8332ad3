package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// sampleEvery samples kproxy's RSS and goroutines every 30 s until ctx
// ends; it fails if kproxy exits.
func (e *env) sampleEvery(ctx context.Context, c config, res *result) error {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if exited, err := e.kp.Exited(); exited {
			return fmt.Errorf("kproxy exited: %v\n%s", err, e.kp.Tail(30))
		}
		at := time.Since(res.started)
		smp, err := e.sample(at)
		if err != nil {
			logf("sample: %v", err)
			continue
		}
		if at >= c.warmup {
			res.samples = append(res.samples, smp)
		}
		logf("%v: RSS %.1f MiB, %d goroutines, %d probes (%d failed), %d changes, nat dispatch rules min %d",
			at.Round(time.Second), smp.rss, smp.goroutines, res.probes.Load(), res.stableFailures.Load(), res.changes.Load(), res.rules.min())
	}
}

// sample is one reading of kproxy's RSS (from /proc) and go_goroutines
// (from /metrics).
type sample struct {
	at         time.Duration
	rss        float64 // MiB
	goroutines int
}

func (e *env) sample(at time.Duration) (sample, error) {
	rss, err := e.rss()
	if err != nil {
		return sample{}, err
	}
	m, err := scrape(e.topo.Node(1).Netns)
	if err != nil {
		return sample{}, err
	}
	return sample{at: at, rss: rss, goroutines: int(m["go_goroutines"])}, nil
}

// rss is kproxy's VmRSS in MiB.
func (e *env) rss() (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.kp.PID()))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.Atoi(f[1])
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", e.kp.PID())
}
