package xtables

import (
	"errors"
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
	a.RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Result: proxier.SyncResult{Full: true,
		Rules: map[string]int{"nat": 7}, Written: map[string]int{"nat": 2}}})
	failed := errors.New("restore failed")
	b.RecordSync(&proxier.SyncRecord{Family: proxier.IPv6, Result: proxier.SyncResult{RestoreFailed: true}, Err: failed})
	b.RecordSync(&proxier.SyncRecord{Family: proxier.IPv6, Result: proxier.SyncResult{Full: true, RestoreFailed: true}, Err: failed})
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

// A failed sync leaves the rule gauges alone (the kernel keeps the
// previous rules), and a failure that is not a restore's counts nothing.
func TestFailedSyncKeepsRuleCounts(t *testing.T) {
	m := NewMetrics(nil)
	m.RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Result: proxier.SyncResult{Full: true, Rules: map[string]int{"nat": 7}}})
	m.RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Result: proxier.SyncResult{Rules: map[string]int{"nat": 1}},
		Err: errors.New("list addresses")})
	if got := testutil.ToFloat64(m.RulesTotal.WithLabelValues("IPv4", "nat")); got != 7 {
		t.Errorf("rules total after a failed sync = %v, want 7", got)
	}
	if got := testutil.CollectAndCount(m.RestoreFailures); got != 0 {
		t.Errorf("restore failure series after a non-restore failure: %d, want 0", got)
	}
}

// A mode built without metrics records nothing and does not crash.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Result: proxier.SyncResult{Rules: map[string]int{"nat": 1}, RestoreFailed: true}})
}
