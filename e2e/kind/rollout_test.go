//go:build kind

package kind

import (
	"context"
	"strings"
	"testing"
	"time"
)

// testRollingUpdateWorkload: every echo pod replaced, one at a time, under
// constant requests from every node and from outside: none fails.
func testRollingUpdateWorkload(t *testing.T, ctx context.Context) {
	loads := startLoads(t, ctx)
	if out, err := kc.kubectl("-n", testNS, "rollout", "restart", "deploy/echo"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := kc.kubectl("-n", testNS, "rollout", "status", "deploy/echo", "--timeout=180s"); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
	time.Sleep(8 * time.Second) // the old pods' drain ends too
	requireNoFailures(t, loads)
}

// testRollingUpdateKproxy: the kproxy DaemonSet restarted node by node under
// constant requests: the rules stay in place while kproxy restarts, so none
// fails.
func testRollingUpdateKproxy(t *testing.T, ctx context.Context) {
	loads := startLoads(t, ctx)
	if out, err := kc.kubectl("-n", "kube-system", "rollout", "restart", "daemonset/kproxy"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := waitDaemonSet(ctx, "kube-system", "kproxy", 3*time.Minute); err != nil {
		t.Error(err)
	}
	out, err := kc.kubectl("-n", "kube-system", "rollout", "status", "daemonset/kproxy", "--timeout=180s")
	if err != nil || !strings.Contains(out, "successfully rolled out") {
		t.Errorf("%v\n%s", err, out)
	}
	time.Sleep(3 * time.Second)
	requireNoFailures(t, loads)
}
