package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// foreignRules are what a CNI plugin, kubelet-like components and an admin
// put into the same tables as kproxy, including a chain with our KUBE-
// prefix that is not one of kproxy's names.
var foreignRules = [][]string{
	{"-t", "nat", "-N", "CNI-FOO"},
	{"-t", "nat", "-A", "CNI-FOO", "-s", "10.244.1.0/24", "!", "-d", "10.244.0.0/16", "-j", "MASQUERADE"},
	{"-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment", "cni masquerade", "-j", "CNI-FOO"},
	{"-t", "nat", "-N", "KUBE-MY-THING"},
	{"-t", "nat", "-A", "KUBE-MY-THING", "-p", "tcp", "--dport", "2223", "-j", "RETURN"},
	{"-t", "nat", "-A", "PREROUTING", "-j", "KUBE-MY-THING"},
	{"-t", "filter", "-N", "USER-CHAIN"},
	{"-t", "filter", "-A", "USER-CHAIN", "-s", "203.0.113.0/24", "-j", "DROP"},
	{"-t", "filter", "-A", "FORWARD", "-j", "USER-CHAIN"},
	{"-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT"},
	{"-t", "mangle", "-A", "PREROUTING", "-p", "udp", "--dport", "4789", "-j", "MARK", "--set-xmark", "0x1/0x1"},
	{"-t", "raw", "-A", "PREROUTING", "-p", "udp", "--dport", "6081", "-j", "NOTRACK"},
}

// foreignLines are the iptables-save lines of the foreign rules, in order.
func foreignLines(dump string) []string {
	var out []string
	for _, l := range strings.Split(dump, "\n") {
		for _, m := range []string{"CNI-FOO", "KUBE-MY-THING", "USER-CHAIN", "--dport 2222", "--dport 4789", "--dport 6081"} {
			if strings.Contains(l, m) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// TestForeignRulesUntouched: rules of other components survive every
// sync (full, partial, after a flush of our chains only) in the same
// order, and "--cleanup" (run twice: idempotent) removes exactly what
// kproxy added — the node ends as it started.
func TestForeignRulesUntouched(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, rule := range foreignRules {
		testrig.Run(t, r.node.Netns, append([]string{"iptables", "-w"}, rule...)...)
	}
	baseline := save(t, r.node.Netns, allTables...)
	want := foreignLines(baseline)
	if len(want) != 12 {
		t.Fatalf("foreign rules not all in place: %q", want)
	}
	r.start(nil, "--iptables-sync-period=2s")
	pods := r.pods()
	r.serviceSet(ctx, "svc", "10.96.12", 10, 1)
	r.waitAnswer("10.96.12.9", []string{pods[0]}, 30*time.Second)
	check := func(step string) {
		t.Helper()
		if got := foreignLines(save(t, r.node.Netns, allTables...)); !slices.Equal(got, want) {
			t.Fatalf("%s: foreign rules changed:\n got %q\nwant %q", step, got, want)
		}
	}
	check("after the first full sync")
	for i := range 10 {
		if err := r.endpoints(ctx, fmt.Sprintf("svc%d", i), pods[(i+1)%4]); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := r.deleteService(ctx, fmt.Sprintf("svc%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.waitAnswer("10.96.12.9", []string{pods[1]}, 30*time.Second)
	check("after partial syncs")
	testrig.Run(t, r.node.Netns, "iptables", "-w", "-t", "nat", "-F", "KUBE-SERVICES")
	testrig.Run(t, r.node.Netns, "iptables", "-w", "-t", "nat", "-X", "KUBE-PROXY-CANARY")
	r.waitMetric(`kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}`, func(v float64) bool { return v >= 2 }, 15*time.Second)
	r.waitAnswer("10.96.12.9", []string{pods[1]}, 30*time.Second)
	check("after a full resync")

	if err := r.kp.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}
	check("after kproxy stopped")
	for i := range 2 {
		if out, err := r.cleanupKproxy(); err != nil {
			t.Fatalf("--cleanup #%d: %v\n%s", i+1, err, out)
		}
		if got := save(t, r.node.Netns, allTables...); got != baseline {
			t.Fatalf("after --cleanup #%d the node differs from before kproxy:\n%s", i+1, lineDiff(baseline, got))
		}
	}
	// --cleanup on a node where kproxy never ran changes nothing.
	other := r.topo.Node(2).Netns
	before := save(t, other, allTables...)
	if out, err := testrig.Exec(other, r.bin, "--cleanup", "--conntrack-max-per-core=0"); err != nil {
		t.Fatalf("--cleanup on a clean node: %v\n%s", err, out)
	}
	if got := save(t, other, allTables...); got != before {
		t.Fatalf("--cleanup on a clean node changed it:\n%s", lineDiff(before, got))
	}
}
