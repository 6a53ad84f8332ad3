package faults

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestXtablesLockHeld: with the iptables-legacy backend, another process
// holds the xtables lock for 15 s while a Service is added. kproxy's
// restores wait their bound (-w 5) and fail; the previous rules keep
// carrying traffic; the failures are counted; once the lock is free the
// new Service is programmed. XTABLES_LOCKFILE gives kproxy and the holder
// a lock of their own, so the machine's /run/xtables.lock is never held.
func TestXtablesLockHeld(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	lock := filepath.Join(t.TempDir(), "xtables.lock")
	r.start([]string{"XTABLES_LOCKFILE=" + lock}, "--iptables-backend=legacy")
	pods := r.pods()
	if err := r.service(ctx, "steady", "10.96.15.1", pods[0]); err != nil {
		t.Fatal(err)
	}
	r.waitAnswer("10.96.15.1", []string{pods[0]}, 30*time.Second)
	r.waitMetric(`kubeproxy_sync_proxy_rules_service_changes_pending`, func(v float64) bool { return v == 0 }, 10*time.Second)
	const failures = `kubeproxy_sync_proxy_rules_iptables_restore_failures_total{ip_family="IPv4"}`
	before := r.waitMetric(failures, func(float64) bool { return true }, 5*time.Second)

	holder := testrig.StartProcess(t, "", "flock", lock, "sleep", "600")
	for exec.Command("flock", "-n", lock, "true").Run() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	held := time.Now()
	if err := r.service(ctx, "added", "10.96.15.2", pods[1]); err != nil {
		t.Fatal(err)
	}
	probes := 0
	for time.Since(held) < 15*time.Second {
		if name, err := r.probe("10.96.15.1", 2*time.Second); err != nil || name != pods[0] {
			t.Fatalf("while the lock was held: steady answered %q (%v), want %s", name, err, pods[0])
		}
		probes++
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := r.probe("10.96.15.2", 500*time.Millisecond); err == nil {
		t.Fatal("added answers although every restore should have waited for the lock")
	}
	failed := r.waitMetric(failures, func(v float64) bool { return v > before }, time.Second) - before
	if !strings.Contains(r.kp.Log(), "xtables lock") {
		t.Errorf("kproxy's log does not say the xtables lock was held:\n%s", r.kp.Tail(20))
	}

	if err := holder.Stop(); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	r.waitAnswer("10.96.15.2", []string{pods[1]}, 30*time.Second)
	t.Logf("FIGURE xtables lock: held 15 s: %d probes to an unchanged Service all answered, %.0f restores failed (counted), the new Service programmed %.1fs after the lock was released",
		probes, failed, time.Since(released).Seconds())
}
