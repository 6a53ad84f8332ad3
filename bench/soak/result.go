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
	start, end                     time.Time
	elapsed                        time.Duration
	probes, stableFailures         atomic.Int64
	churnProbes, churnFailures     atomic.Int64
	changes, apiErrors             atomic.Int64
	rssStart, rssEnd, rssMax       float64
	goroutinesStart, goroutinesEnd int
	mu                             sync.Mutex
	notes                          []string
}

func (r *result) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.notes) < 20 {
		r.notes = append(r.notes, s)
	}
}

// failed: any probe failure, memory growth over 25% (and 5 MiB), or more
// than 5 extra goroutines.
func (r *result) failed() bool {
	grew := r.rssEnd > r.rssStart*1.25 && r.rssEnd-r.rssStart > 5
	return r.stableFailures.Load() > 0 || r.churnFailures.Load() > 0 || grew || r.goroutinesEnd > r.goroutinesStart+5
}

func (r *result) markdown(c config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| soak (%s mode, %v, %.0f changes/s) | value |\n|---|---|\n", c.mode, r.elapsed.Round(time.Second), c.rate)
	fmt.Fprintf(&b, "| API changes applied (create/move/delete) | %d (%d refused) |\n", r.changes.Load(), r.apiErrors.Load())
	fmt.Fprintf(&b, "| probes to %d unchanged Services / failed | %d / %d |\n", c.stable, r.probes.Load(), r.stableFailures.Load())
	fmt.Fprintf(&b, "| probes to churned Services %v after their last change / failed | %d / %d |\n", settle, r.churnProbes.Load(), r.churnFailures.Load())
	fmt.Fprintf(&b, "| kproxy RSS start / end / max | %.1f / %.1f / %.1f MiB |\n", r.rssStart, r.rssEnd, r.rssMax)
	fmt.Fprintf(&b, "| go_goroutines start / end | %d / %d |\n", r.goroutinesStart, r.goroutinesEnd)
	for _, n := range r.notes {
		fmt.Fprintf(&b, "\nfailure: %s", n)
	}
	return b.String()
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
