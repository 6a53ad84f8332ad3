package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kproxy/kproxy/proxier"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://198.51.100.1:6443"}
users:
- name: u
  user: {token: secret}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`

func TestRestConfig(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"--kubeconfig", kc, "--kube-api-qps=50", "--kube-api-burst=100"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := restConfig(o.Config, o.Master)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://198.51.100.1:6443" || rc.BearerToken != "secret" {
		t.Errorf("kubeconfig not used: host %q token %q", rc.Host, rc.BearerToken)
	}
	if rc.ContentType != "application/vnd.kubernetes.protobuf" || rc.AcceptContentTypes != "application/vnd.kubernetes.protobuf,application/json" {
		t.Errorf("content types %q / %q, want protobuf with a JSON fallback", rc.ContentType, rc.AcceptContentTypes)
	}
	if rc.QPS != 50 || rc.Burst != 100 {
		t.Errorf("QPS %v burst %d, want 50 and 100", rc.QPS, rc.Burst)
	}
	if rc.Dial == nil {
		t.Error("no dialer that waits for a down apiserver")
	}

	o, err = parseOptions([]string{"--kubeconfig", kc, "--master=https://203.0.113.1:443", "--kube-api-content-type=application/json"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err = restConfig(o.Config, o.Master); err != nil {
		t.Fatal(err)
	}
	if rc.Host != "https://203.0.113.1:443" || rc.ContentType != "application/json" || rc.AcceptContentTypes != "" {
		t.Errorf("--master / JSON: host %q content %q accept %q", rc.Host, rc.ContentType, rc.AcceptContentTypes)
	}

	// Neither flag: the in-cluster config, which fails outside a Pod.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := restConfig(defaultConfig(), ""); err == nil {
		t.Error("in-cluster config outside a cluster: no error")
	}
}

// TestMetricsHandler: /metrics serves kube-proxy's names from the private
// registry, with the Go and process collectors.
func TestMetricsHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	m := proxier.NewMetrics(reg)
	m.LastSync.WithLabelValues("IPv4").Set(42)
	m.InvalidObjects.WithLabelValues("Service").Inc()
	rec := httptest.NewRecorder()
	metricsHandler(reg).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	for _, want := range []string{
		`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 42`,
		`kproxy_invalid_objects_total{kind="Service"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
