package xtables

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kproxy/kproxy/proxier"
)

// Both families' proxiers, and a mode built again, ask the same registry
// for the metrics: they must share them, not panic.
func TestMetricsRegisteredTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.RecordSync(proxier.IPv4, proxier.SyncResult{Rules: map[string]int{"nat": 7}, Written: map[string]int{"nat": 2}})
	b.RestoreFailed(proxier.IPv6, true)
	b.RestoreFailed(proxier.IPv6, false)
	if got := testutil.ToFloat64(b.RulesTotal.WithLabelValues("IPv4", "nat")); got != 7 {
		t.Errorf("rules total seen through the second Metrics = %v, want 7", got)
	}
	if got := testutil.ToFloat64(a.RulesLast.WithLabelValues("IPv4", "nat")); got != 2 {
		t.Errorf("rules last = %v, want 2", got)
	}
	if got := testutil.ToFloat64(a.RestoreFailures.WithLabelValues("IPv6")); got != 2 {
		t.Errorf("restore failures = %v, want 2", got)
	}
	if got := testutil.ToFloat64(a.PartialRestoreFailures.WithLabelValues("IPv6")); got != 1 {
		t.Errorf("partial restore failures = %v, want 1", got)
	}
}

// A mode built without metrics records nothing and does not crash.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.RecordSync(proxier.IPv4, proxier.SyncResult{Rules: map[string]int{"nat": 1}})
	m.RestoreFailed(proxier.IPv4, true)
}
