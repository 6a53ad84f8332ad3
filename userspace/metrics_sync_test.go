package userspace

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// A rejected iptables-restore comes back in the sync result and, recorded
// as the loop records every sync, counts in
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total. With no
// Service there is no listener to open, so no namespace is needed.
func TestRestoreFailureCounted(t *testing.T) {
	f := NewFake()
	m := xtables.NewMetrics(nil)
	p, err := New(Options{Family: proxier.IPv4, Kernel: f, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	f.FailOn = xtables.FailOnce("Restore", errors.New("injected"))
	snap := newSnap(proxier.NodeInfo{Name: "node1"}).snap
	res, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true})
	if err == nil || !res.RestoreFailed {
		t.Fatalf("err %v, RestoreFailed %v; want an error and a restore failure", err, res.RestoreFailed)
	}
	proxier.NewMetrics(nil).RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Mode: "userspace", Result: res, Err: err}, p)
	if got := testutil.ToFloat64(m.RestoreFailures.WithLabelValues("IPv4")); got != 1 {
		t.Errorf("restore failures = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.PartialRestoreFailures.WithLabelValues("IPv4")); got != 0 {
		t.Errorf("partial restore failures = %v, want 0 (userspace syncs are all full)", got)
	}
}
