package xtables

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kproxy/kproxy/proxier"
)

// Metrics are kube-proxy's metrics named after iptables, owned by the
// modes that write iptables rules (the mode-neutral ones are in
// proxier.Metrics). Each such mode hands them to the sync loop as its
// proxier.ModeMetrics, and the loop records every sync here. Names and
// labels are kube-proxy's: dashboards depend on them. A nil *Metrics
// records nothing.
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

var _ proxier.ModeMetrics = (*Metrics)(nil)

// RecordSync records one sync of family r.Family: a restore failure
// (counted apart when the sync was partial, as kube-proxy's iptables mode
// does) and, after a success, the rules owned and written.
func (m *Metrics) RecordSync(r *proxier.SyncRecord) {
	if m == nil {
		return
	}
	f := string(r.Family)
	if r.Result.RestoreFailed {
		m.RestoreFailures.WithLabelValues(f).Inc()
		if !r.Result.Full {
			m.PartialRestoreFailures.WithLabelValues(f).Inc()
		}
	}
	if r.Err != nil {
		return // the kernel holds the previous sync's rules
	}
	for table, n := range r.Result.Rules {
		m.RulesTotal.WithLabelValues(f, table).Set(float64(n))
	}
	for table, n := range r.Result.Written {
		m.RulesLast.WithLabelValues(f, table).Set(float64(n))
	}
}
