package main

import (
	"errors"
	"fmt"
	"time"
)

type config struct {
	duration, warmup      time.Duration
	rate                  float64
	workers               int
	stable, churned       int
	background, endpoints int
	killAfter, down       time.Duration
	rulesEvery            time.Duration
	mode, kproxy, command string
	kproxyV               int    // kproxy's -v
	keepLog               string // copy kproxy's log here at the end
}

func (c config) check() error {
	switch {
	case c.stable < 1 || c.stable > 30:
		return errors.New("-stable must be 1 to 30")
	case c.churned < 1 || c.churned > 150:
		return errors.New("-churned must be 1 to 150")
	case c.rate <= 0 || c.workers < 1 || c.workers > c.churned:
		return errors.New("-rate must be positive and -workers 1 to -churned")
	case c.background < 0 || c.endpoints < 1:
		return errors.New("-background must be ≥ 0 and -endpoints ≥ 1")
	case c.warmup >= c.duration:
		return errors.New("-warmup must be shorter than -duration")
	case c.killAfter > 0 && (c.killAfter < c.warmup || c.killAfter+c.down >= c.duration):
		return fmt.Errorf("-kill-apiserver-after must fall after the %v warm-up and leave the outage inside -duration", c.warmup)
	}
	return nil
}

// The soak's own Services take fixed ClusterIPs in the first /24 of the
// Service CIDR, the band the apiserver keeps for static addresses.
func stableName(i int) string { return fmt.Sprintf("stable-%d", i) }
func stableIP(i int) string   { return fmt.Sprintf("10.96.0.%d", 20+i) }
func churnName(i int) string  { return fmt.Sprintf("churn-%d", i) }
func churnIP(i int) string    { return fmt.Sprintf("10.96.0.%d", 50+i) }

const (
	markerName = "marker"
	markerIP   = "10.96.0.250"
	// loadNS holds the background Services, as in the bench.
	loadNS = "bench"
)
