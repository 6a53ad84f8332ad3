package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// restoreWrappers writes, for each iptables-restore name kproxy may run
// (iptables-restore, iptables-nft-restore, iptables-legacy-restore: the
// one of the backend it selects at start), the script wrap(real path) in
// a directory that goes first in kproxy's PATH, and returns that PATH.
func restoreWrappers(t *testing.T, wrap func(real string) string) (pathEnv string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"iptables-restore", "iptables-nft-restore", "iptables-legacy-restore"} {
		real, err := exec.LookPath(name)
		if err != nil {
			continue // that backend is not installed
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(wrap(real)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH")
}

// failingRestore puts iptables-restore wrappers first in PATH that reject
// their input (as the real one does, naming a line) while trigger exists,
// and run the real binary otherwise.
func failingRestore(t *testing.T) (pathEnv, trigger string) {
	t.Helper()
	trigger = filepath.Join(t.TempDir(), "fail")
	pathEnv = restoreWrappers(t, func(real string) string {
		return "#!/bin/sh\nif [ -e " + trigger + " ]; then\n  cat >/dev/null\n  echo 'iptables-restore: line 3 failed' >&2\n  exit 1\nfi\nexec " + real + " \"$@\"\n"
	})
	return pathEnv, trigger
}

// TestRestoreFailureKeepsRules: while iptables-restore rejects every
// input, the rules of the last good sync stay exactly as they were and
// keep carrying traffic, the failure is logged with the offending line
// and counted, and kproxy retries until the fault clears, then converges.
func TestRestoreFailureKeepsRules(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pathEnv, trigger := failingRestore(t)
	r.start([]string{pathEnv})
	pods := r.pods()
	if err := r.service(ctx, "before", "10.96.10.1", pods[0], pods[2]); err != nil {
		t.Fatal(err)
	}
	r.waitAnswer("10.96.10.1", []string{pods[0], pods[2]}, 30*time.Second)
	r.waitMetric(`kubeproxy_sync_proxy_rules_service_changes_pending`, func(v float64) bool { return v == 0 }, 10*time.Second)
	good := save(t, r.node.Netns, "nat", "filter")

	if err := os.WriteFile(trigger, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.service(ctx, "during", "10.96.10.2", pods[1]); err != nil {
		t.Fatal(err)
	}
	failures := r.waitMetric(`kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"}`, func(v float64) bool { return v >= 2 }, 30*time.Second)
	// Retries happen with backoff; traffic on the old rules is unaffected.
	for range 20 {
		if name, err := r.probe("10.96.10.1", 2*time.Second); err != nil || (name != pods[0] && name != pods[2]) {
			t.Fatalf("during the fault: %s %v", name, err)
		}
	}
	if got := save(t, r.node.Netns, "nat", "filter"); got != good {
		t.Errorf("rules changed while iptables-restore failed:\n%s", lineDiff(good, got))
	}
	log := r.kp.Log()
	if !strings.Contains(log, "line 3 failed") || !strings.Contains(log, "Sync failed, keeping the previous rules") {
		t.Errorf("the failure is not logged with iptables-restore's message:\n%s", r.kp.Tail(30))
	}

	cleared := time.Now()
	if err := os.Remove(trigger); err != nil {
		t.Fatal(err)
	}
	r.waitAnswer("10.96.10.2", []string{pods[1]}, 60*time.Second)
	recovery := time.Since(cleared)
	r.waitAnswer("10.96.10.1", []string{pods[0], pods[2]}, 5*time.Second)
	t.Logf("FIGURE restore-failure: %.0f failed restores counted, old rules intact and serving, recovered %.1fs after the fault cleared", failures, recovery.Seconds())
	_ = testrig.ClusterCIDR
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	if len(out) == 0 {
		// Same lines, different order or count: show where they part.
		la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
		for i := 0; i < max(len(la), len(lb)); i++ {
			var x, y string
			if i < len(la) {
				x = la[i]
			}
			if i < len(lb) {
				y = lb[i]
			}
			if x != y {
				out = append(out, fmt.Sprintf("line %d: - %s", i+1, x), fmt.Sprintf("line %d: + %s", i+1, y))
				if len(out) > 10 {
					break
				}
			}
		}
	}
	return strings.Join(out, "\n")
}
