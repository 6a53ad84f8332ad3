package iptables

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// Cleanup on a namespace where kproxy never ran, and a second Cleanup
// after a real one, must both succeed: --cleanup is idempotent.
func TestKernelCleanupIdempotent(t *testing.T) {
	testrig.RequireRoot(t)
	ns := testrig.NewNetns(t, "clean")
	ctx := context.Background()
	for _, f := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
		k, err := xtables.NewRunner(xtables.RunnerConfig{Family: f, Netns: ns})
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Family: f, Kernel: k}
		if err := Cleanup(ctx, opts); err != nil {
			t.Fatalf("%s: cleanup of an empty namespace: %v", f, err)
		}
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: &proxier.Snapshot{Family: f}, Full: true}); err != nil {
			t.Fatalf("%s: sync: %v", f, err)
		}
		for i := range 2 {
			if err := Cleanup(ctx, opts); err != nil {
				t.Fatalf("%s: cleanup #%d: %v", f, i+1, err)
			}
		}
		if left, err := k.Save(ctx, "nat"); err != nil {
			t.Fatal(err)
		} else if strings.Contains(string(left), ":KUBE-") {
			t.Errorf("%s: chains left after cleanup:\n%s", f, left)
		}
	}
}
