package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// A rejected iptables-restore comes back in the sync result and, recorded
// as the loop records every sync, counts in
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total, as in
// kube-proxy's ipvs mode; other kernel failures do not.
func TestRestoreFailureCounted(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		failOp        string
		restoreFailed bool
	}{{"Restore", true}, {"AddDest TCP 10.96.0.20:80", false}} {
		t.Run(tc.failOp, func(t *testing.T) {
			k := nodeFake()
			m := xtables.NewMetrics(nil)
			p, err := New(Options{Kernel: k, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16")),
				Metrics: m, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			k.FailOn = func(op string) error {
				if strings.HasPrefix(op, tc.failOp) {
					return errors.New("injected")
				}
				return nil
			}
			c := scenario().checkout()
			res, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: c.Snapshots[proxier.IPv4], Full: true})
			if err == nil || res.RestoreFailed != tc.restoreFailed {
				t.Fatalf("err %v, RestoreFailed %v; want an error, RestoreFailed %v", err, res.RestoreFailed, tc.restoreFailed)
			}
			proxier.NewMetrics(nil).RecordSync(&proxier.SyncRecord{Family: proxier.IPv4, Mode: "ipvs", Result: res, Err: err}, p)
			want := 0.0
			if tc.restoreFailed {
				want = 1
			}
			if got := testutil.ToFloat64(m.RestoreFailures.WithLabelValues("IPv4")); got != want {
				t.Errorf("restore failures = %v, want %v", got, want)
			}
		})
	}
}
