package faults

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// nodeState is everything a mode may leave in a node: the full
// iptables-save of every table, ipsets, interfaces and addresses.
func nodeState(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(save(t, ns, allTables...))
	sets, err := testrig.Exec(ns, "ipset", "list", "-n")
	if err != nil {
		t.Fatalf("ipset list: %v", err)
	}
	b.WriteString("--- ipsets\n" + sets)
	links := testrig.Run(t, ns, "ip", "-o", "link", "show")
	// Counters and link state flags are not state a mode leaves behind.
	b.WriteString("--- links\n" + regexp.MustCompile(`(?m)^\d+: (\S+).*$`).ReplaceAllString(links, "$1"))
	b.WriteString("--- addresses\n" + testrig.Run(t, ns, "ip", "-o", "addr", "show"))
	b.WriteString("--- nftables\n" + nftablesModeTables(t, ns))
	return b.String()
}

// nftablesModeTables is the nftables mode's kube-proxy tables in ns, one
// per family, canonical ("none" when absent); iptables-nft's own tables
// are in the iptables-save above.
func nftablesModeTables(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, family := range []string{"ip", "ip6"} {
		out, err := testrig.Exec(ns, "nft", "list", "table", family, testrig.NFTTable)
		if err != nil {
			out = "none\n"
		} else {
			out = testrig.CanonicalNFT(out)
		}
		fmt.Fprintf(&b, "table %s %s:\n%s", family, testrig.NFTTable, out)
	}
	return b.String()
}

// holdsNFTablesMode reports whether a nodeState shows a kube-proxy table.
func holdsNFTablesMode(state string) bool {
	_, tables, _ := strings.Cut(state, "--- nftables\n")
	return strings.Count(tables, "none\n") != 2
}

var iptablesModeChain = regexp.MustCompile(`(?m)^:(KUBE-(SVC|SVL|SEP|EXT|FW|SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|FORWARD|PROXY-FIREWALL|EXTERNAL-SERVICES)\b|KPROXY-SVCS-)`)
var userspaceModeChain = regexp.MustCompile(`(?m)^:KPROXY-US-`)

// TestModeSwitch runs iptables → userspace → nftables → iptables on one
// node, each mode started over the previous one's leftovers (as a
// DaemonSet update does): traffic works in every phase, no phase holds
// anything of the mode before it, the second iptables phase equals the
// first, and --cleanup returns the node to where it started. The ipvs legs need a
// VM (no ip_vs on this host) and are covered by the ipvs VM tests.
func TestModeSwitch(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	baseline := nodeState(t, r.node.Netns)
	pods := r.pods()
	r.serviceSet(ctx, "m", "10.96.13", 5, 2)
	phase := func(mode string) string {
		t.Helper()
		r.start(nil, "--proxy-mode="+mode)
		// The previous mode's rules stay and answer: only this process's
		// own successful sync says its rules are in place.
		r.waitMetric(`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`, func(v float64) bool { return v > 0 }, 60*time.Second)
		for i := range 5 {
			r.waitAnswer(fmt.Sprintf("10.96.13.%d", i+1), []string{pods[i%4], pods[(i+1)%4]}, 30*time.Second)
		}
		r.waitMetric(`kubeproxy_sync_proxy_rules_service_changes_pending`, func(v float64) bool { return v == 0 }, 10*time.Second)
		time.Sleep(500 * time.Millisecond) // let the sync that answered finish its bookkeeping
		st := nodeState(t, r.node.Netns)
		if err := r.kp.Stop(); err != nil {
			t.Logf("stop %s: %v", mode, err)
		}
		return st
	}
	first := phase("iptables")
	if userspaceModeChain.MatchString(first) {
		t.Errorf("iptables phase holds userspace chains")
	}
	if holdsNFTablesMode(first) {
		t.Errorf("iptables phase holds a kube-proxy nftables table")
	}
	user := phase("userspace")
	if m := iptablesModeChain.FindAllString(user, -1); len(m) > 0 {
		t.Errorf("userspace phase still holds iptables-mode chains %q", m)
	}
	nft := phase("nftables")
	if !holdsNFTablesMode(nft) {
		t.Errorf("nftables phase wrote no kube-proxy table")
	}
	if userspaceModeChain.MatchString(nft) || iptablesModeChain.MatchString(nft) {
		t.Errorf("nftables phase still holds chains of another mode:\n%s", lineDiff(user, nft))
	}
	second := phase("iptables")
	if holdsNFTablesMode(second) {
		t.Errorf("second iptables phase still holds the nftables mode's table:\n%s", lineDiff(first, second))
	}
	if second != first {
		t.Errorf("second iptables phase differs from the first:\n%s", lineDiff(first, second))
	}
	if out, err := r.cleanupKproxy(); err != nil {
		t.Fatalf("--cleanup: %v\n%s", err, out)
	}
	if got := nodeState(t, r.node.Netns); got != baseline {
		t.Errorf("after --cleanup the node differs from before kproxy:\n%s", lineDiff(baseline, got))
	}
}
