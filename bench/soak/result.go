package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// result is the soak's figures.
type result struct {
	started                    time.Time
	elapsed                    time.Duration
	probes, stableFailures     atomic.Int64
	downProbes                 atomic.Int64 // probes while the apiserver was down
	churnProbes, churnFailures atomic.Int64
	changes, touches           atomic.Int64
	apiErrors, downErrors      atomic.Int64
	dropped                    atomic.Int64 // churn ticks with every writer busy
	samples                    []sample     // every 30 s after the warm-up
	end                        sample
	rules                      ruleCount
	outage                     outageFigures
	mu                         sync.Mutex
	notes                      []string
}

func (r *result) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.notes) < 20 {
		r.notes = append(r.notes, s)
	}
}

// Thresholds of the verdict.
const (
	rssFlat        = 1.1 // end RSS over the first sample after the warm-up
	goroutinesFlat = 5   // goroutines end − start, either way
	rssOutage      = 1.2 // RSS during and after the relist over steady state
	convergeBound  = 2 * time.Second
)

// verdicts lists every check the run failed.
func (r *result) verdicts(c config) []string {
	var v []string
	if n := r.stableFailures.Load(); n > 0 {
		v = append(v, fmt.Sprintf("%d probes to unchanged Services failed", n))
	}
	if n := r.churnFailures.Load(); n > 0 {
		v = append(v, fmt.Sprintf("%d probes to settled churned Services failed", n))
	}
	if len(r.samples) > 0 {
		s, bound := r.samples[0], rssFlat
		if r.outage.ran {
			// A relist replaces every cached object: the heap settles
			// at a new level, which the outage's own bound covers.
			bound = rssOutage
		}
		if r.end.rss > s.rss*bound {
			v = append(v, fmt.Sprintf("RSS grew %.2f× (bound %.1f×)", r.end.rss/s.rss, bound))
		}
		if d := r.end.goroutines - s.goroutines; d > goroutinesFlat || d < -goroutinesFlat {
			v = append(v, fmt.Sprintf("goroutines %d → %d", s.goroutines, r.end.goroutines))
		}
	}
	if want := c.stable + c.background; c.mode == "iptables" && r.rules.min() < want {
		v = append(v, fmt.Sprintf("nat dispatch rules fell to %d (< %d Services that never go away)", r.rules.min(), want))
	}
	return append(v, r.outage.verdicts()...)
}

func (f *outageFigures) verdicts() []string {
	if !f.ran {
		return nil
	}
	var v []string
	if !f.convergedOK {
		v = append(v, "kproxy did not converge within 3 min of the apiserver's return")
	} else if f.converged > convergeBound {
		v = append(v, fmt.Sprintf("converged %.1f s after the apiserver answered (bound %v)", f.converged.Seconds(), convergeBound))
	}
	if q := f.rssRatio(); q > rssOutage {
		v = append(v, fmt.Sprintf("RSS %.2f× steady state around the outage (bound %.1f×)", q, rssOutage))
	}
	return v
}

func (f *outageFigures) rssRatio() float64 {
	if f.rssSteady == 0 {
		return 0
	}
	return max(f.rssDown, f.rssAfter) / f.rssSteady
}

// scrape reads kproxy's /metrics from inside its namespace.
func scrape(ns string) (map[string]float64, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return testrig.DialContextInNetns(ctx, ns, network, addr)
		}}}
	resp, err := c.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if i := strings.LastIndexByte(l, ' '); i > 0 && !strings.HasPrefix(l, "#") {
			if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
				out[l[:i]] = v
			}
		}
	}
	return out, sc.Err()
}
