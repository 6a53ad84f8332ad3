package testrig

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// RootSnapshot is the observable network state of the root namespace:
// addresses, links, routes, rules, firewall rulesets and the host-wide conntrack
// sysctls. Volatile parts (address lifetimes, route expiry, counters) are
// removed so equal state compares equal.
type RootSnapshot map[string]string

// rootCommands are the state dumps in a RootSnapshot; tools that are not
// installed are left out.
var rootCommands = [][]string{
	{"ip", "-o", "link", "show"},
	{"ip", "-o", "addr", "show"},
	{"ip", "-4", "route", "show", "table", "all"},
	{"ip", "-6", "route", "show", "table", "all"},
	{"ip", "-4", "rule", "show"},
	{"ip", "-6", "rule", "show"},
	{"iptables-save"},
	{"ip6tables-save"},
	{"iptables-legacy-save"},
	{"nft", "list", "ruleset"},
	{"ipset", "list", "-name"},
}

var rootSysctls = []string{
	"net/netfilter/nf_conntrack_max",
	"net/netfilter/nf_conntrack_buckets",
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/rp_filter",
	"net/ipv4/conf/all/route_localnet",
	"net/bridge/bridge-nf-call-iptables",
}

var volatile = []*regexp.Regexp{
	regexp.MustCompile(`\s*(valid|preferred)_lft \S+`),
	regexp.MustCompile(`\s*expires \S+`),
	regexp.MustCompile(`\[\d+:\d+\]`),    // iptables-save counters
	regexp.MustCompile(`^# .*$`),         // iptables-save comments (timestamps)
	regexp.MustCompile(`\\\s+`),          // ip -o line continuations
	regexp.MustCompile(`\s+altname \S+`), // link alternative names
}

// SnapshotRootNetns captures the root namespace's network state. It only reads.
func SnapshotRootNetns() (RootSnapshot, error) {
	snap := RootSnapshot{}
	for _, args := range rootCommands {
		if _, err := exec.LookPath(args[0]); err != nil {
			continue
		}
		out, err := Exec("", args...)
		if err != nil {
			return nil, fmt.Errorf("snapshot root netns: %w", err)
		}
		snap[strings.Join(args, " ")] = normalize(out)
	}
	for _, key := range rootSysctls {
		b, err := os.ReadFile("/proc/sys/" + key)
		if err == nil {
			snap["sysctl "+key] = strings.TrimSpace(string(b))
		}
	}
	return snap, nil
}

func normalize(out string) string {
	lines := strings.Split(out, "\n")
	keep := lines[:0]
	for _, l := range lines {
		for _, re := range volatile {
			l = re.ReplaceAllString(l, "")
		}
		if l = strings.TrimRight(l, " "); l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// Diff describes how other differs from s ("" if equal).
func (s RootSnapshot) Diff(other RootSnapshot) string {
	var b strings.Builder
	for key, before := range s {
		after, ok := other[key]
		if !ok {
			fmt.Fprintf(&b, "%s: missing afterwards\n", key)
			continue
		}
		if before == after {
			continue
		}
		fmt.Fprintf(&b, "%s changed:\n", key)
		bl, al := setOf(before), setOf(after)
		for l := range bl {
			if !al[l] {
				fmt.Fprintf(&b, "  - %s\n", l)
			}
		}
		for l := range al {
			if !bl[l] {
				fmt.Fprintf(&b, "  + %s\n", l)
			}
		}
	}
	for key := range other {
		if _, ok := s[key]; !ok {
			fmt.Fprintf(&b, "%s: new afterwards\n", key)
		}
	}
	return b.String()
}

func setOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		m[l] = true
	}
	return m
}

// CheckRootNetnsUnchanged snapshots the root namespace now and fails the test
// in cleanup if it changed. Call it before building anything, so its cleanup
// runs after every other cleanup of the test. Other processes on the host
// (e.g. a concurrent test run that misbehaves) can also trigger it.
func CheckRootNetnsUnchanged(t testing.TB) {
	t.Helper()
	before, err := SnapshotRootNetns()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		after, err := SnapshotRootNetns()
		if err != nil {
			t.Error(err)
			return
		}
		if d := before.Diff(after); d != "" {
			t.Errorf("the root network namespace changed:\n%s", d)
		}
	})
}
