package faults

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestFlushedRulesRestored: an admin (or a firewall reload) flushes the
// nat table and deletes its chains, then deletes our filter chains too.
// The sync period is minutes long, so only the canary (checked every
// proxier.MaxCanaryInterval) can explain a recovery within seconds.
func TestFlushedRulesRestored(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	const period = 5 * time.Minute
	bound := proxier.MaxCanaryInterval + 3*time.Second
	r.start(nil, "--iptables-sync-period="+period.String())
	pods := r.pods()
	if err := r.service(ctx, "web", "10.96.11.1", pods[0], pods[3]); err != nil {
		t.Fatal(err)
	}
	r.waitAnswer("10.96.11.1", []string{pods[0], pods[3]}, 30*time.Second)
	r.waitMetric(`kubeproxy_sync_proxy_rules_service_changes_pending`, func(v float64) bool { return v == 0 }, 10*time.Second)
	want := serviceComments(t, r.node.Netns)

	for _, step := range []struct {
		name, table string
		cmds        [][]string
	}{
		{"flush nat", "nat", [][]string{{"iptables", "-t", "nat", "-F"}, {"iptables", "-t", "nat", "-X"}}},
		{"delete filter chains", "filter", [][]string{{"iptables", "-t", "filter", "-F"}, {"iptables", "-t", "filter", "-X"}}},
	} {
		for _, c := range step.cmds {
			testrig.Run(t, r.node.Netns, c...)
		}
		flushed := time.Now()
		if step.name == "flush nat" {
			if _, err := r.probe("10.96.11.1", 500*time.Millisecond); err == nil {
				t.Fatalf("%s: the Service still answers with an empty nat table", step.name)
			}
			// Recovery by traffic: the Service answers again.
			r.waitAnswer("10.96.11.1", []string{pods[0], pods[3]}, bound)
		}
		for !strings.Contains(save(t, r.node.Netns, step.table), ":KUBE-PROXY-CANARY") && time.Since(flushed) < bound {
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(flushed)
		if took > bound {
			t.Fatalf("%s: not restored %v after the flush, want within %v (sync period %v)", step.name, took, bound, period)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !slices.Equal(serviceComments(t, r.node.Netns), want) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := serviceComments(t, r.node.Netns); !slices.Equal(got, want) {
			t.Fatalf("%s: Services after restore %v, want %v", step.name, got, want)
		}
		t.Logf("FIGURE flush (%s): rules and traffic restored %.1fs after the flush (sync period %v, canary every %v)",
			step.name, took.Seconds(), period, proxier.MaxCanaryInterval)
	}
	if !strings.Contains(r.kp.Log(), "Our rules were flushed by someone else") {
		t.Error("the canary did not report the flush")
	}
}
