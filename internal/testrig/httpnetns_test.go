package testrig

import (
	"maps"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP kubeproxy_sync_proxy_rules_duration_seconds SyncProxyRules latency
# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"} 3

kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.7e+09
kproxy_sync_failures_total 0
not-a-sample
 5
kproxy_bad_value NaNx
`
	got, err := ParseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"}`:      3,
		`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`: 1.7e9,
		"kproxy_sync_failures_total":                                          0,
	}
	if !maps.Equal(got, want) {
		t.Errorf("ParseMetrics = %v, want %v", got, want)
	}
}
