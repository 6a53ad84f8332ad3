package proxier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
)

// timedBackend's Sync takes took on the fake clock and returns res, err.
type timedBackend struct {
	clk  *clocktesting.FakeClock
	took time.Duration
	res  SyncResult
	err  error
	mode *recordedModeSyncs
}

func (b *timedBackend) Sync(context.Context, SyncRequest) (SyncResult, error) {
	b.clk.Step(b.took)
	return b.res, b.err
}

func (b *timedBackend) Cleanup(context.Context) error { return nil }

func (b *timedBackend) ModeMetrics() ModeMetrics { return b.mode }

// recordedModeSyncs is a mode's own metrics: it keeps what it was given.
type recordedModeSyncs struct{ got []SyncRecord }

func (m *recordedModeSyncs) RecordSync(r *SyncRecord) { m.got = append(m.got, *r) }

// timedCleaner's cleanup takes took on the fake clock and deletes deleted;
// it keeps the redirects it was given.
type timedCleaner struct {
	clk       *clocktesting.FakeClock
	took      time.Duration
	deleted   int
	redirects []Redirects
}

func (c *timedCleaner) CleanStaleFlows(_ context.Context, _ *Snapshot, r Redirects) (int, error) {
	c.clk.Step(c.took)
	c.redirects = append(c.redirects, r)
	return c.deleted, nil
}

const (
	checkoutTook = 3 * time.Millisecond
	hookTook     = 5 * time.Millisecond
)

// timedLoop is a synced dual-stack loop whose checkout and AfterSync hook
// take time on clk; the test calls sync itself.
func timedLoop(t *testing.T, clk *clocktesting.FakeClock, backends map[Family]Proxier, cleaners map[Family]StaleFlowCleaner) (*Loop, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	tr := NewTracker("me", []Family{IPv4, IPv6}, nil, clk.Now().Add(-time.Hour))
	hook := func(context.Context, *Snapshot) { clk.Step(hookTook) }
	l := NewLoop(tr, LoopOptions{Mode: "test", SyncPeriod: time.Minute, Backends: backends, Conntrack: cleaners,
		AfterSync: []AfterSync{hook}, Metrics: m, Clock: clk})
	l.checkout = func() Checkout { clk.Step(checkoutTook); return tr.Checkout() }
	l.OnSynced()
	return l, m
}

// The sync duration metrics time what kube-proxy's syncProxyRules does:
// the checkout, the backend's Sync, the AfterSync hooks and the conntrack
// cleanup. Each family counts the shared checkout and its own work only.
// Network programming latency and the last-sync timestamp end when the
// rules are programmed, as in kube-proxy.
func TestSyncDurationSpansWholeSync(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	mode := &recordedModeSyncs{}
	v4 := &timedBackend{clk: clk, took: 100 * time.Millisecond, mode: mode, res: SyncResult{KernelWrite: 40 * time.Millisecond}}
	v6 := &timedBackend{clk: clk, took: 200 * time.Millisecond, mode: mode}
	c4, c6 := &timedCleaner{clk: clk, took: 10 * time.Millisecond, deleted: 2}, &timedCleaner{clk: clk, took: 20 * time.Millisecond}
	l, m := timedLoop(t, clk, map[Family]Proxier{IPv4: v4, IPv6: v6}, map[Family]StaleFlowCleaner{IPv4: c4, IPv6: c6})
	trigger := clk.Now().Add(-time.Second)
	es := slice("ns", "a", "a-1", epSpec{ip: "10.244.0.1"})
	es.Annotations = map[string]string{AnnotationTriggerTime: trigger.Format(time.RFC3339)}
	l.OnEndpointSlice(nil, es)
	start := clk.Now()
	if err := l.sync(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f       Family
		b       *timedBackend
		c       *timedCleaner
		program time.Time // when its rules were programmed
	}{
		{IPv4, v4, c4, start.Add(checkoutTook + v4.took)},
		{IPv6, v6, c6, start.Add(checkoutTook + v4.took + c4.took + hookTook + v6.took)},
	} {
		want := checkoutTook + tc.b.took + tc.c.took + hookTook
		fam := string(tc.f)
		if got := histogramSum(t, m.SyncDuration.WithLabelValues(fam)); got != want.Seconds() {
			t.Errorf("%s sync duration = %v s, want %v (checkout + Sync + conntrack + hooks)", fam, got, want.Seconds())
		}
		if got := histogramSum(t, m.FullSyncDuration.WithLabelValues(fam)); got != want.Seconds() {
			t.Errorf("%s full sync duration = %v s, want %v", fam, got, want.Seconds())
		}
		if got := histogramSum(t, m.ConntrackDuration.WithLabelValues(fam)); got != tc.c.took.Seconds() {
			t.Errorf("%s conntrack duration = %v s, want %v", fam, got, tc.c.took.Seconds())
		}
		if got := testutil.ToFloat64(m.LastSync.WithLabelValues(fam)); got != float64(tc.program.UnixNano())/1e9 {
			t.Errorf("%s last sync = %v, want %v (rules programmed)", fam, got, float64(tc.program.UnixNano())/1e9)
		}
	}
	// The slice is IPv4's: IPv6's sync programmed nothing for it.
	if got, want := histogramSum(t, m.NetworkProgramming.WithLabelValues("IPv4")), start.Add(checkoutTook+v4.took).Sub(trigger).Seconds(); got != want {
		t.Errorf("network programming = %v s, want %v (trigger to rules programmed)", got, want)
	}
	if n := histogram(t, m.NetworkProgramming.WithLabelValues("IPv6")).GetSampleCount(); n != 0 {
		t.Errorf("IPv6 observed %d network programming latencies of an IPv4 slice", n)
	}
	// Only a backend that timed its kernel write records one.
	if got := histogramSum(t, m.KernelWriteDuration.WithLabelValues("IPv4", "full")); got != 0.04 {
		t.Errorf("IPv4 kernel write = %v s, want the backend's 0.04", got)
	}
	if n := testutil.CollectAndCount(m.KernelWriteDuration); n != 1 {
		t.Errorf("kernel write recorded in %d series, want IPv4's full sync's only", n)
	}
	if got := testutil.ToFloat64(m.ConntrackDeleted.WithLabelValues("IPv4")); got != 2 {
		t.Errorf("conntrack deleted = %v, want 2", got)
	}
	if len(mode.got) != 2 || mode.got[0].Family != IPv4 || !mode.got[0].Result.Full || mode.got[0].Mode != "test" {
		t.Errorf("mode metrics got %+v, want both families' full syncs", mode.got)
	}
}

// The conntrack cleanup learns the listeners the sync redirected to (the
// userspace mode's), so it keeps the flows they answer.
func TestCleanupGetsTheSyncsRedirects(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	name := ServicePortName{Port: "dns", Protocol: "UDP"}
	v4 := &timedBackend{clk: clk, res: SyncResult{Redirects: Redirects{name: {Internal: 40001}}}, mode: &recordedModeSyncs{}}
	c4 := &timedCleaner{clk: clk}
	l, _ := timedLoop(t, clk, map[Family]Proxier{IPv4: v4}, map[Family]StaleFlowCleaner{IPv4: c4})
	if err := l.sync(); err != nil {
		t.Fatal(err)
	}
	if len(c4.redirects) != 1 || c4.redirects[0][name].Internal != 40001 {
		t.Errorf("cleanup got redirects %v, want the sync's %v", c4.redirects, v4.res.Redirects)
	}
}

// A failed sync is timed too (no conntrack cleanup, no hooks, as in
// kube-proxy), counted, and records nothing about rules it did not program.
func TestFailedSyncRecorded(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	mode := &recordedModeSyncs{}
	v4 := &timedBackend{clk: clk, took: 100 * time.Millisecond, err: errors.New("injected"),
		res: SyncResult{RestoreFailed: true, NoLocalEndpoints: map[string]int{"internal": 1}}, mode: mode}
	c4 := &timedCleaner{clk: clk, took: 10 * time.Millisecond}
	l, m := timedLoop(t, clk, map[Family]Proxier{IPv4: v4}, map[Family]StaleFlowCleaner{IPv4: c4})
	if err := l.sync(); err == nil {
		t.Fatal("sync succeeded")
	}
	want := checkoutTook + v4.took
	if got := histogramSum(t, m.SyncDuration.WithLabelValues("IPv4")); got != want.Seconds() {
		t.Errorf("sync duration = %v s, want %v (checkout + Sync)", got, want.Seconds())
	}
	if got := testutil.ToFloat64(m.SyncFailures.WithLabelValues("IPv4", "test")); got != 1 {
		t.Errorf("sync failures = %v, want 1", got)
	}
	for name, c := range map[string]prometheus.Collector{"last sync": m.LastSync, "no local endpoints": m.NoLocalEndpoints, "conntrack": m.ConntrackDuration} {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%s recorded for a failed sync (%d series)", name, n)
		}
	}
	if len(mode.got) != 1 || !mode.got[0].Result.RestoreFailed || mode.got[0].Err == nil {
		t.Errorf("mode metrics got %+v, want the failed restore", mode.got)
	}
}

func histogram(t *testing.T, o prometheus.Observer) *dto.Histogram {
	t.Helper()
	var d dto.Metric
	if err := o.(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram()
}

func histogramSum(t *testing.T, o prometheus.Observer) float64 {
	t.Helper()
	return histogram(t, o).GetSampleSum()
}

// TestSummaryLineSplitsElapsed: the summary line's elapsed is the sum of
// its checkout, program and cleanup phases, each from the timings, and
// kernelWrite is the backend's, when it timed one.
func TestSummaryLineSplitsElapsed(t *testing.T) {
	start := time.Unix(1000, 0)
	r := &SyncRecord{Family: IPv4, Mode: "test", Result: SyncResult{Full: true, Written: map[string]int{"a": 2, "b": 3},
		KernelWrite: 60 * time.Millisecond},
		Timings: SyncTimings{Checkout: 3 * time.Millisecond, Start: start,
			Programmed: start.Add(100 * time.Millisecond), Done: start.Add(105 * time.Millisecond)}}
	kv := r.summary()
	got := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		got[kv[i].(string)] = kv[i+1]
	}
	for key, want := range map[string]any{
		"elapsed": 108 * time.Millisecond, "checkout": 3 * time.Millisecond, "program": 100 * time.Millisecond,
		"cleanup": 5 * time.Millisecond, "kernelWrite": 60 * time.Millisecond, "sync": "full", "written": 5, "result": "ok",
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	// A mode that does not time its kernel write prints no kernelWrite.
	r.Result.KernelWrite = 0
	for i := 0; i < len(r.summary()); i += 2 {
		if r.summary()[i] == "kernelWrite" {
			t.Errorf("summary prints kernelWrite for a sync that did not time it")
		}
	}
}
