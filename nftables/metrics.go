package nftables

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kproxy/kproxy/proxier"
)

// Metrics are kube-proxy's nftables-mode metrics (the mode-neutral ones
// are in proxier.Metrics), with its names and labels. A nil *Metrics
// records nothing.
type Metrics struct {
	// SyncFailures counts sync transactions nft rejected;
	// CleanupFailures the failed deletions of stale chains.
	SyncFailures, CleanupFailures *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). Called again with the same reg, it returns the metrics
// registered first, so that both families share them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	fam := []string{"ip_family"}
	m := &Metrics{
		SyncFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
			Help: "Cumulative proxy nftables sync failures"}, fam),
		CleanupFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total",
			Help: "Cumulative proxy nftables cleanup failures"}, fam),
	}
	if reg != nil {
		m.SyncFailures = proxier.Register(reg, m.SyncFailures)
		m.CleanupFailures = proxier.Register(reg, m.CleanupFailures)
	}
	return m
}

func (m *Metrics) syncFailed(f proxier.Family) {
	if m != nil {
		m.SyncFailures.WithLabelValues(string(f)).Inc()
	}
}

func (m *Metrics) cleanupFailed(f proxier.Family) {
	if m != nil {
		m.CleanupFailures.WithLabelValues(string(f)).Inc()
	}
}
