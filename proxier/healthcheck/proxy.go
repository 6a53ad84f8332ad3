package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kproxy/kproxy/proxier"
)

// ProxyHealth tracks, per IP family, when the rules were last in sync and
// since when an update has been waiting, and whether this node may take
// traffic. It is safe for concurrent use.
type ProxyHealth struct {
	clock    clock.PassiveClock
	timeout  time.Duration
	metrics  *proxier.Metrics
	families []proxier.Family

	mu           sync.Mutex
	lastUpdated  map[proxier.Family]time.Time
	oldestQueued map[proxier.Family]time.Time // zero: nothing pending
	terminating  bool
}

var _ proxier.HealthRecorder = (*ProxyHealth)(nil)

// ProxyHealthOptions configures a ProxyHealth.
type ProxyHealthOptions struct {
	// Timeout is how long a queued update may wait before /healthz fails;
	// kube-proxy uses 2× the sync period.
	Timeout time.Duration
	// Metrics receives kubeproxy_proxy_healthz_total and _livez_total; nil
	// means not counted.
	Metrics *proxier.Metrics
	Clock   clock.PassiveClock // nil: the real clock
	// Families are the proxied IP families: /healthz fails until each of
	// them has synced successfully once, so a node whose syncs all fail
	// (a kernel that cannot run the mode) never reports ready. /livez
	// keeps kube-proxy's start-up grace.
	Families []proxier.Family
}

// NewProxyHealth returns a health tracker; it serves nothing until Serve.
func NewProxyHealth(o ProxyHealthOptions) *ProxyHealth {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &ProxyHealth{
		clock: o.Clock, timeout: o.Timeout, metrics: o.Metrics, families: o.Families,
		lastUpdated: map[proxier.Family]time.Time{}, oldestQueued: map[proxier.Family]time.Time{},
	}
}

// QueuedUpdate implements proxier.HealthRecorder: an update is waiting.
// Only the oldest pending one counts.
func (h *ProxyHealth) QueuedUpdate(f proxier.Family) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.oldestQueued[f].IsZero() {
		h.oldestQueued[f] = h.clock.Now()
	}
}

// Updated implements proxier.HealthRecorder: family f's rules are in sync.
func (h *ProxyHealth) Updated(f proxier.Family) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastUpdated[f] = h.clock.Now()
	h.oldestQueued[f] = time.Time{}
}

// SetNodeTerminating records whether the Node is being deleted (or marked
// for deletion by the cluster autoscaler).
func (h *ProxyHealth) SetNodeTerminating(terminating bool) {
	h.mu.Lock()
	h.terminating = terminating
	h.mu.Unlock()
}

// AfterSync is a proxier.AfterSync hook that keeps node eligibility
// current from the synced snapshot.
func (h *ProxyHealth) AfterSync(_ context.Context, snap *proxier.Snapshot) {
	h.SetNodeTerminating(snap.Node.Terminating)
}

// Status is one health evaluation.
type Status struct {
	// Healthy: no family has an update pending for longer than the timeout.
	Healthy bool
	// NodeEligible: the Node is not being deleted.
	NodeEligible bool
	// Synced: every family of ProxyHealthOptions.Families has synced
	// successfully at least once.
	Synced bool
	// LastUpdated is the oldest of the families' last successful syncs
	// (zero before every family has synced once).
	LastUpdated time.Time
	CurrentTime time.Time
}

// Status evaluates the health now.
func (h *ProxyHealth) Status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	s := Status{Healthy: true, NodeEligible: !h.terminating, Synced: true, CurrentTime: now}
	for _, f := range h.families {
		if h.lastUpdated[f].IsZero() {
			s.Synced = false
		}
	}
	first := true
	for f, q := range h.oldestQueued {
		if !q.IsZero() && now.Sub(q) > h.timeout {
			s.Healthy = false
		}
		u := h.lastUpdated[f]
		if first || u.Before(s.LastUpdated) {
			s.LastUpdated = u
		}
		first = false
	}
	return s
}

// Healthy reports whether the rules are being kept in sync (node
// eligibility aside); the service health servers report it as
// serviceProxyHealthy.
func (h *ProxyHealth) Healthy() bool { return h.Status().Healthy }

// Handler serves /healthz and /livez.
func (h *ProxyHealth) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { h.serve(w, true) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { h.serve(w, false) })
	return mux
}

func (h *ProxyHealth) serve(w http.ResponseWriter, healthz bool) {
	s := h.Status()
	ok := s.Healthy
	if healthz {
		ok = ok && s.NodeEligible && s.Synced
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	if h.metrics != nil {
		c := h.metrics.LivezTotal
		if healthz {
			c = h.metrics.HealthzTotal
		}
		c.WithLabelValues(strconv.Itoa(code)).Inc()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if healthz {
		fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q, "nodeEligible": %v}`, s.LastUpdated, s.CurrentTime, s.NodeEligible)
	} else {
		fmt.Fprintf(w, `{"lastUpdated": %q,"currentTime": %q}`, s.LastUpdated, s.CurrentTime)
	}
}

// Serve listens on addr and serves Handler until ctx is done.
func (h *ProxyHealth) Serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("healthz server: %w", err)
	}
	return ServeListener(ctx, l, h.Handler(), "healthz")
}

// ServeListener serves handler on l until ctx is done, then shuts the
// server down. It returns nil after a clean shutdown.
func ServeListener(ctx context.Context, l net.Listener, handler http.Handler, what string) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	klog.V(1).InfoS("Serving", "server", what, "address", l.Addr().String())
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return fmt.Errorf("%s server: %w", what, err)
}
