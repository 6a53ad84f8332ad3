package measure

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names shared by kube-proxy and kproxy.
const (
	mSync           = "kubeproxy_sync_proxy_rules_duration_seconds"
	mFull           = "kubeproxy_sync_full_proxy_rules_duration_seconds"
	mPartial        = "kubeproxy_sync_partial_proxy_rules_duration_seconds"
	mLast           = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
	mQueued         = "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"
	mSvcPending     = "kubeproxy_sync_proxy_rules_service_changes_pending"
	mEpPending      = "kubeproxy_sync_proxy_rules_endpoint_changes_pending"
	mProgramming    = "kubeproxy_network_programming_duration_seconds"
	mIptablesTotals = "kubeproxy_sync_proxy_rules_iptables_total"
	// kproxy's only: the part of a sync spent in iptables-restore / nft.
	mKernelWrite = "kproxy_sync_kernel_write_duration_seconds"
)

// Hist is a histogram's cumulative sum and count.
type Hist struct {
	Sum   float64
	Count uint64
}

// Sub returns the mean of the observations between before and h, or NaN.
func (h Hist) MeanSince(before Hist) float64 {
	if h.Count <= before.Count {
		return math.NaN()
	}
	return (h.Sum - before.Sum) / float64(h.Count-before.Count)
}

// Sample is one scrape of the IPv4 sync metrics.
type Sample struct {
	At          time.Time
	Sync        Hist
	Full        Hist
	Partial     Hist
	Programming Hist
	// FullKernelWrite and PartialKernelWrite: kproxy's time in
	// iptables-restore / nft by kind of sync (zero for upstream).
	FullKernelWrite, PartialKernelWrite Hist
	LastSync                            float64 // unix seconds of the last successful sync, 0 if none
	LastQueued                          float64
	Pending                             float64 // service + endpoint changes pending
	NatRules                            float64 // kubeproxy_sync_proxy_rules_iptables_total{table="nat"}, NaN if absent
}

// Synced reports whether at least one sync succeeded and its duration is
// recorded: kube-proxy sets the last-sync timestamp before its conntrack
// cleanup and records the duration when the sync returns, so a scrape in
// between (seconds at 250,000 endpoints) would read no duration.
func (s Sample) Synced() bool { return s.LastSync > 0 && s.Sync.Count > 0 }

// Converged reports whether the proxy has nothing left to do: no pending
// changes and the last sync ended after the last one was queued.
func (s Sample) Converged() bool {
	return s.Synced() && s.Pending == 0 && s.LastSync >= s.LastQueued
}

// Scraper reads a metrics endpoint, possibly inside another namespace.
type Scraper struct {
	URL    string
	client *http.Client
}

// NewScraper returns a scraper for url that dials with dial (e.g. into the
// node's network namespace).
func NewScraper(url string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Scraper {
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	return &Scraper{URL: url, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Scrape fetches and parses the metrics.
func (s *Scraper) Scrape(ctx context.Context) (Sample, error) {
	body, err := s.get(ctx, s.URL)
	if err != nil {
		return Sample{}, err
	}
	defer body.Close()
	return Parse(body)
}

// Fetch returns the body of path (with an optional query) on the metrics server (e.g.
// /debug/pprof/heap, served with --profiling).
func (s *Scraper) Fetch(ctx context.Context, path string) ([]byte, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	u.Path, u.RawQuery, _ = strings.Cut(path, "?")
	body, err := s.get(ctx, u.String())
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

func (s *Scraper) get(ctx context.Context, target string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", target, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("get %s: %s: %s", target, resp.Status, b)
	}
	return resp.Body, nil
}

// Parse parses Prometheus text exposition into a Sample (IPv4 series, or
// series without an ip_family label).
func Parse(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, fmt.Errorf("parse metrics: %w", err)
	}
	s := Sample{At: time.Now(), NatRules: math.NaN()}
	s.Sync = hist(fams[mSync])
	s.Full = hist(fams[mFull])
	s.Partial = hist(fams[mPartial])
	s.Programming = hist(fams[mProgramming])
	s.FullKernelWrite = histWith(fams[mKernelWrite], map[string]string{"sync": "full"})
	s.PartialKernelWrite = histWith(fams[mKernelWrite], map[string]string{"sync": "partial"})
	s.LastSync = gauge(fams[mLast], nil)
	s.LastQueued = gauge(fams[mQueued], nil)
	s.Pending = gauge(fams[mSvcPending], nil) + gauge(fams[mEpPending], nil)
	if _, ok := fams[mIptablesTotals]; ok {
		s.NatRules = gauge(fams[mIptablesTotals], map[string]string{"table": "nat"})
	}
	return s, nil
}

// ipv4 reports whether m is an IPv4 series (or has no family) and carries
// every label in want.
func ipv4(m *dto.Metric, want map[string]string) bool {
	matched := 0
	for _, l := range m.GetLabel() {
		if l.GetName() == "ip_family" && l.GetValue() != "IPv4" {
			return false
		}
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			matched++
		}
	}
	return matched == len(want)
}

func hist(f *dto.MetricFamily) Hist { return histWith(f, nil) }

// histWith sums the IPv4 series of f that carry every label in want.
func histWith(f *dto.MetricFamily, want map[string]string) Hist {
	var h Hist
	for _, m := range f.GetMetric() {
		if ipv4(m, want) && m.GetHistogram() != nil {
			h.Sum += m.GetHistogram().GetSampleSum()
			h.Count += m.GetHistogram().GetSampleCount()
		}
	}
	return h
}

func gauge(f *dto.MetricFamily, want map[string]string) float64 {
	var v float64
	for _, m := range f.GetMetric() {
		if !ipv4(m, want) {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			v += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v
}
