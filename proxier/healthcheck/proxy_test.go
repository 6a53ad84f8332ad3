package healthcheck

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kproxy/kproxy/proxier"
)

func get(t *testing.T, h http.Handler, path string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", path, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestProxyHealth(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := proxier.NewMetrics(nil)
	h := NewProxyHealth(ProxyHealthOptions{Timeout: 60 * time.Second, Metrics: m, Clock: clk})
	hh := h.Handler()

	type want struct{ healthz, livez int }
	check := func(step string, w want, eligible bool) {
		t.Helper()
		code, body := get(t, hh, "/healthz")
		if code != w.healthz {
			t.Errorf("%s: /healthz = %d, want %d (body %v)", step, code, w.healthz, body)
		}
		if body["nodeEligible"] != eligible {
			t.Errorf("%s: nodeEligible = %v, want %v", step, body["nodeEligible"], eligible)
		}
		for _, k := range []string{"lastUpdated", "currentTime"} {
			if _, ok := body[k].(string); !ok {
				t.Errorf("%s: /healthz body lacks %s: %v", step, k, body)
			}
		}
		code, body = get(t, hh, "/livez")
		if code != w.livez {
			t.Errorf("%s: /livez = %d, want %d (body %v)", step, code, w.livez, body)
		}
		if _, ok := body["nodeEligible"]; ok {
			t.Errorf("%s: /livez reports nodeEligible: %v", step, body)
		}
	}

	check("fresh", want{200, 200}, true)
	h.QueuedUpdate(proxier.IPv4)
	h.QueuedUpdate(proxier.IPv6)
	clk.Step(59 * time.Second)
	check("queued, within timeout", want{200, 200}, true)
	h.QueuedUpdate(proxier.IPv4) // a later update does not reset the oldest
	clk.Step(2 * time.Second)
	check("queued, past timeout", want{503, 503}, true)
	h.Updated(proxier.IPv4)
	check("IPv6 still stuck", want{503, 503}, true)
	h.Updated(proxier.IPv6)
	check("both synced", want{200, 200}, true)

	h.AfterSync(t.Context(), &proxier.Snapshot{Node: proxier.NodeInfo{Terminating: true}})
	check("node terminating", want{503, 200}, false)
	h.SetNodeTerminating(false)
	check("node back", want{200, 200}, true)

	if got := counterValue(t, m.HealthzTotal.WithLabelValues("200")); got != 4 {
		t.Errorf("healthz_total{code=200} = %v, want 4", got)
	}
	if got := counterValue(t, m.HealthzTotal.WithLabelValues("503")); got != 3 {
		t.Errorf("healthz_total{code=503} = %v, want 3", got)
	}
	if got := counterValue(t, m.LivezTotal.WithLabelValues("503")); got != 2 {
		t.Errorf("livez_total{code=503} = %v, want 2", got)
	}
}

// With Families, /healthz stays 503 until every family has synced once
// (a kernel that cannot run the mode must never look ready); /livez keeps
// kube-proxy's start-up grace.
func TestProxyHealthFirstSync(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := NewProxyHealth(ProxyHealthOptions{Timeout: time.Minute, Clock: clk, Families: []proxier.Family{proxier.IPv4, proxier.IPv6}})
	hh := h.Handler()
	check := func(step string, healthz, livez int) {
		t.Helper()
		if code, body := get(t, hh, "/healthz"); code != healthz {
			t.Errorf("%s: /healthz = %d, want %d (body %v)", step, code, healthz, body)
		}
		if code, body := get(t, hh, "/livez"); code != livez {
			t.Errorf("%s: /livez = %d, want %d (body %v)", step, code, livez, body)
		}
	}
	check("fresh", 503, 200)
	h.QueuedUpdate(proxier.IPv4)
	h.QueuedUpdate(proxier.IPv6)
	h.Updated(proxier.IPv4)
	check("IPv6 never synced", 503, 200)
	clk.Step(61 * time.Second)
	check("IPv6 never synced, past the timeout", 503, 503)
	h.Updated(proxier.IPv6)
	check("both synced", 200, 200)
	if s := h.Status(); !s.Synced || !s.Healthy {
		t.Errorf("Status = %+v", s)
	}
}

func TestProxyHealthLastUpdated(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	h := NewProxyHealth(ProxyHealthOptions{Timeout: time.Minute, Clock: clk})
	h.Updated(proxier.IPv4)
	clk.Step(time.Second)
	h.Updated(proxier.IPv6)
	s := h.Status()
	if !s.LastUpdated.Equal(start) {
		t.Errorf("LastUpdated = %v, want the oldest family's %v", s.LastUpdated, start)
	}
	if !s.CurrentTime.Equal(start.Add(time.Second)) || !s.Healthy || !s.NodeEligible {
		t.Errorf("Status = %+v", s)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
