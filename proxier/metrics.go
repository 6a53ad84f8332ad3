package proxier

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Metrics holds kproxy's mode-neutral Prometheus metrics, under
// kube-proxy's names so that existing dashboards and alerts keep working.
// Metrics named after one mode's kernel interface belong to that mode
// (ModeMetrics; the iptables-named ones are in internal/xtables). The
// Record methods below are the only writers of the sync metrics.
type Metrics struct {
	SyncDuration           *prometheus.HistogramVec
	FullSyncDuration       *prometheus.HistogramVec
	PartialSyncDuration    *prometheus.HistogramVec
	LastSync               *prometheus.GaugeVec
	LastQueued             *prometheus.GaugeVec
	NetworkProgramming     *prometheus.HistogramVec
	EndpointChangesPending prometheus.Gauge
	EndpointChangesTotal   prometheus.Counter
	ServiceChangesPending  prometheus.Gauge
	ServiceChangesTotal    prometheus.Counter
	SyncFailures           *prometheus.CounterVec
	NoLocalEndpoints       *prometheus.GaugeVec
	ConntrackDuration      *prometheus.HistogramVec
	ConntrackDeleted       *prometheus.CounterVec
	HealthzTotal           *prometheus.CounterVec
	LivezTotal             *prometheus.CounterVec
	InvalidObjects         *prometheus.CounterVec
	// KernelWriteDuration (kproxy's own) is the part of a sync's duration
	// spent in the program loading its rules (SyncResult.KernelWrite).
	KernelWriteDuration *prometheus.HistogramVec
}

// syncBuckets: 1 ms to 16 s, as kube-proxy's sync histograms.
var syncBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// programmingBuckets follows kube-proxy's network programming histogram.
func programmingBuckets() []float64 {
	b := []float64{0.25, 0.5}
	for s := 1.0; s < 60; s++ {
		b = append(b, s)
	}
	for s := 60.0; s < 120; s += 5 {
		b = append(b, s)
	}
	for s := 120.0; s <= 300; s += 30 {
		b = append(b, s)
	}
	return b
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, as in tests). Called again with the same reg, it returns
// the metrics registered first.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	fam := []string{"ip_family"}
	m := &Metrics{
		SyncDuration:           prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kubeproxy_sync_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds", Buckets: syncBuckets}, fam),
		FullSyncDuration:       prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kubeproxy_sync_full_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds for full resyncs", Buckets: syncBuckets}, fam),
		PartialSyncDuration:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kubeproxy_sync_partial_proxy_rules_duration_seconds", Help: "SyncProxyRules latency in seconds for partial resyncs", Buckets: syncBuckets}, fam),
		LastSync:               prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", Help: "The last time proxy rules were successfully synced"}, fam),
		LastQueued:             prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", Help: "The last time a sync of proxy rules was queued"}, fam),
		NetworkProgramming:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kubeproxy_network_programming_duration_seconds", Help: "In Network Programming Latency in seconds", Buckets: programmingBuckets()}, fam),
		EndpointChangesPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", Help: "Pending proxy rules Endpoint changes"}),
		EndpointChangesTotal:   prometheus.NewCounter(prometheus.CounterOpts{Name: "kubeproxy_sync_proxy_rules_endpoint_changes_total", Help: "Cumulative proxy rules Endpoint changes"}),
		ServiceChangesPending:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_service_changes_pending", Help: "Pending proxy rules Service changes"}),
		ServiceChangesTotal:    prometheus.NewCounter(prometheus.CounterOpts{Name: "kubeproxy_sync_proxy_rules_service_changes_total", Help: "Cumulative proxy rules Service changes"}),
		SyncFailures:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_sync_failures_total", Help: "Failed syncs, by mode"}, []string{"ip_family", "mode"}),
		NoLocalEndpoints:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total", Help: "Number of services with a Local traffic policy and no endpoints"}, []string{"ip_family", "traffic_policy"}),
		ConntrackDuration:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kubeproxy_conntrack_reconciler_sync_duration_seconds", Help: "Time taken to reconcile stale conntrack entries", Buckets: syncBuckets}, fam),
		ConntrackDeleted:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_conntrack_reconciler_deleted_entries_total", Help: "Cumulative stale conntrack entries deleted"}, fam),
		HealthzTotal:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_proxy_healthz_total", Help: "Cumulative proxy healthz HTTP status"}, []string{"code"}),
		LivezTotal:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeproxy_proxy_livez_total", Help: "Cumulative proxy livez HTTP status"}, []string{"code"}),
		InvalidObjects:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_invalid_objects_total", Help: "Services and EndpointSlices (or parts of them) skipped as invalid"}, []string{"kind"}),
		KernelWriteDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kproxy_sync_kernel_write_duration_seconds",
			Help: "Time the program loading a sync's rules (iptables-restore, nft) ran, exec to exit, by sync kind", Buckets: syncBuckets},
			[]string{"ip_family", "sync"}),
	}
	if reg != nil {
		m.SyncDuration = Register(reg, m.SyncDuration)
		m.FullSyncDuration = Register(reg, m.FullSyncDuration)
		m.PartialSyncDuration = Register(reg, m.PartialSyncDuration)
		m.LastSync = Register(reg, m.LastSync)
		m.LastQueued = Register(reg, m.LastQueued)
		m.NetworkProgramming = Register(reg, m.NetworkProgramming)
		m.EndpointChangesPending = Register(reg, m.EndpointChangesPending)
		m.EndpointChangesTotal = Register(reg, m.EndpointChangesTotal)
		m.ServiceChangesPending = Register(reg, m.ServiceChangesPending)
		m.ServiceChangesTotal = Register(reg, m.ServiceChangesTotal)
		m.SyncFailures = Register(reg, m.SyncFailures)
		m.NoLocalEndpoints = Register(reg, m.NoLocalEndpoints)
		m.ConntrackDuration = Register(reg, m.ConntrackDuration)
		m.ConntrackDeleted = Register(reg, m.ConntrackDeleted)
		m.HealthzTotal = Register(reg, m.HealthzTotal)
		m.LivezTotal = Register(reg, m.LivezTotal)
		m.InvalidObjects = Register(reg, m.InvalidObjects)
		m.KernelWriteDuration = Register(reg, m.KernelWriteDuration)
	}
	return m
}

// ModeMetrics are metrics a mode owns because they carry its kernel
// interface's name (xtables.Metrics: kube-proxy's iptables-named ones).
// RecordSync hands them every sync, failed ones included.
type ModeMetrics interface {
	RecordSync(r *SyncRecord)
}

// RecordQueued records that a sync of families was queued at now, with
// the tracker's pending change counts.
func (m *Metrics) RecordQueued(families []Family, now time.Time, pendingServices, pendingEndpoints int) {
	for _, f := range families {
		m.LastQueued.WithLabelValues(string(f)).Set(float64(now.UnixNano()) / 1e9)
	}
	m.RecordPending(pendingServices, pendingEndpoints)
}

// RecordPending records the tracker's pending change counts.
func (m *Metrics) RecordPending(services, endpoints int) {
	m.ServiceChangesPending.Set(float64(services))
	m.EndpointChangesPending.Set(float64(endpoints))
}

// RecordCheckout records the changes a sync took from the tracker.
func (m *Metrics) RecordCheckout(c *Checkout) {
	m.ServiceChangesTotal.Add(float64(c.ServiceChanges))
	m.EndpointChangesTotal.Add(float64(c.EndpointChanges))
}

// RecordSync records everything one sync of one family by backend b
// produced, in the mode-neutral metrics and in b's own (ModeMetricsOwner).
// As in kube-proxy, the durations cover the whole sync, failed ones too;
// the rest describes rules that are programmed, so only a success records
// it, and network programming latency ends when the rules are in the
// kernel.
func (m *Metrics) RecordSync(r *SyncRecord, b Proxier) {
	fam := string(r.Family)
	total := r.Timings.Total().Seconds()
	m.SyncDuration.WithLabelValues(fam).Observe(total)
	if r.Result.Full {
		m.FullSyncDuration.WithLabelValues(fam).Observe(total)
	} else {
		m.PartialSyncDuration.WithLabelValues(fam).Observe(total)
	}
	if w := r.Result.KernelWrite; w > 0 {
		m.KernelWriteDuration.WithLabelValues(fam, r.kind()).Observe(w.Seconds())
	}
	if o, ok := b.(ModeMetricsOwner); ok && o.ModeMetrics() != nil {
		o.ModeMetrics().RecordSync(r)
	}
	if r.Err != nil {
		m.SyncFailures.WithLabelValues(fam, r.Mode).Inc()
		return
	}
	programmed := r.Timings.Programmed
	m.LastSync.WithLabelValues(fam).Set(float64(programmed.UnixNano()) / 1e9)
	for _, t := range r.Triggers {
		m.NetworkProgramming.WithLabelValues(fam).Observe(programmed.Sub(t).Seconds())
	}
	for policy, n := range r.Result.NoLocalEndpoints {
		m.NoLocalEndpoints.WithLabelValues(fam, policy).Set(float64(n))
	}
	if c := r.StaleFlows; c != nil {
		m.ConntrackDuration.WithLabelValues(fam).Observe(c.Took.Seconds())
		m.ConntrackDeleted.WithLabelValues(fam).Add(float64(c.Deleted))
	}
}

// Register registers c with reg and returns it, or returns the collector
// already registered under c's name: one registry serves both families'
// proxiers (and tests build many), so registering twice must not panic.
// Any other conflict is a bug: it is logged, and c counts unexported.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	klog.ErrorS(err, "Cannot register a metric")
	return c
}
