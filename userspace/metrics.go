package userspace

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kproxy/kproxy/proxier"
)

// overflowLabel is the "service" label of service ports beyond the cap.
const overflowLabel = "other"

// metrics are the userspace data path's per-service metrics. The "service"
// label is "namespace/name:port/PROTOCOL"; at most max distinct values are
// used, the rest share overflowLabel.
type metrics struct {
	active       *prometheus.GaugeVec
	accepted     *prometheus.CounterVec
	bytes        *prometheus.CounterVec
	dialFailures *prometheus.CounterVec
	retries      *prometheus.CounterVec
	refused      *prometheus.CounterVec
	skipped      *prometheus.CounterVec

	mu     sync.Mutex
	labels map[string]bool
	max    int
}

// portMetrics are one service port's children, resolved once per listener
// so that the data path does no label lookups.
type portMetrics struct {
	active                      prometheus.Gauge
	accepted                    prometheus.Counter
	bytesIn, bytesOut           prometheus.Counter
	dialFailures, retries, refd prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, max int) *metrics {
	svc := []string{"service"}
	m := &metrics{
		active:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kproxy_userspace_active_connections", Help: "Open proxied TCP connections and UDP sessions"}, svc),
		accepted:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_userspace_accepted_connections_total", Help: "Accepted TCP connections and started UDP sessions"}, svc),
		bytes:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_userspace_bytes_total", Help: "Bytes proxied, by direction (in: client to endpoint, out: endpoint to client); TCP bytes are counted when the connection ends"}, []string{"service", "direction"}),
		dialFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_userspace_dial_failures_total", Help: "Failed connection attempts to endpoints"}, svc),
		retries:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_userspace_dial_retries_total", Help: "Connection attempts after a first failed one"}, svc),
		refused:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_userspace_refused_connections_total", Help: "Client connections reset because no endpoint could be used or reached"}, svc),
		skipped:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kproxy_userspace_skipped_service_ports_total", Help: "Service ports the userspace mode cannot serve (e.g. SCTP)"}, []string{"reason"}),
		labels:       map[string]bool{},
		max:          max,
	}
	if reg != nil {
		m.active = proxier.Register(reg, m.active)
		m.accepted = proxier.Register(reg, m.accepted)
		m.bytes = proxier.Register(reg, m.bytes)
		m.dialFailures = proxier.Register(reg, m.dialFailures)
		m.retries = proxier.Register(reg, m.retries)
		m.refused = proxier.Register(reg, m.refused)
		m.skipped = proxier.Register(reg, m.skipped)
	}
	return m
}

// forPort returns the children for a service port label, applying the cap.
func (m *metrics) forPort(label string) *portMetrics {
	m.mu.Lock()
	if !m.labels[label] {
		if len(m.labels) >= m.max {
			label = overflowLabel
		} else {
			m.labels[label] = true
		}
	}
	m.mu.Unlock()
	return &portMetrics{
		active:       m.active.WithLabelValues(label),
		accepted:     m.accepted.WithLabelValues(label),
		bytesIn:      m.bytes.WithLabelValues(label, "in"),
		bytesOut:     m.bytes.WithLabelValues(label, "out"),
		dialFailures: m.dialFailures.WithLabelValues(label),
		retries:      m.retries.WithLabelValues(label),
		refd:         m.refused.WithLabelValues(label),
	}
}
