package xtables

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kproxy/kproxy/proxier"
)

// Metrics are kube-proxy's metrics named after iptables, owned by the
// modes that write iptables rules (the mode-neutral ones are in
// proxier.Metrics). Names and labels are kube-proxy's: dashboards depend
// on them. A nil *Metrics records nothing.
type Metrics struct {
	// RulesTotal and RulesLast: rules owned after a sync and rules
	// written by it, by family and table.
	RulesTotal, RulesLast *prometheus.GaugeVec
	// RestoreFailures counts failed iptables-restore runs;
	// PartialRestoreFailures those of partial syncs.
	RestoreFailures, PartialRestoreFailures *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered). Called again with the same reg, it returns the metrics
// registered first, so every mode and family may ask for them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	table := []string{"ip_family", "table"}
	fam := []string{"ip_family"}
	m := &Metrics{
		RulesTotal:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_iptables_total", Help: "Total number of iptables rules owned by kproxy"}, table),
		RulesLast:              prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_iptables_last", Help: "Number of iptables rules written by kproxy in the last sync"}, table),
		RestoreFailures:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total", Help: "Cumulative proxy iptables restore failures"}, fam),
		PartialRestoreFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total", Help: "Cumulative proxy iptables partial restore failures"}, fam),
	}
	if reg != nil {
		m.RulesTotal = proxier.Register(reg, m.RulesTotal)
		m.RulesLast = proxier.Register(reg, m.RulesLast)
		m.RestoreFailures = proxier.Register(reg, m.RestoreFailures)
		m.PartialRestoreFailures = proxier.Register(reg, m.PartialRestoreFailures)
	}
	return m
}

// RecordSync sets family f's rule gauges from a successful sync's result.
func (m *Metrics) RecordSync(f proxier.Family, res proxier.SyncResult) {
	if m == nil {
		return
	}
	for table, n := range res.Rules {
		m.RulesTotal.WithLabelValues(string(f), table).Set(float64(n))
	}
	for table, n := range res.Written {
		m.RulesLast.WithLabelValues(string(f), table).Set(float64(n))
	}
}

// RestoreFailed counts a failed iptables-restore of family f; partial
// tells that it was a partial sync's.
func (m *Metrics) RestoreFailed(f proxier.Family, partial bool) {
	if m == nil {
		return
	}
	m.RestoreFailures.WithLabelValues(string(f)).Inc()
	if partial {
		m.PartialRestoreFailures.WithLabelValues(string(f)).Inc()
	}
}
