package conntrack

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/iptables"
	"github.com/kproxy/kproxy/proxier"
)

// The real iptables Proxier and the Cleaner together, as the sync loop runs
// them: a UDP flow moves to the live endpoint after its endpoint is removed.
func TestKernelIPTablesProxierAndCleaner(t *testing.T) {
	r := newRig(t)
	k, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv4, Netns: r.node.Netns})
	if err != nil {
		testrig.SkipOrFail(t, err.Error())
	}
	p, err := iptables.New(iptables.Options{Family: proxier.IPv4, Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Cleanup(context.Background()); err != nil {
			t.Logf("iptables cleanup: %v", err)
		}
	})

	tr := proxier.NewTracker(r.node.Name, []proxier.Family{proxier.IPv4}, func(kind, name string, err error) {
		t.Errorf("invalid %s %s: %v", kind, name, err)
	}, time.Now())
	tr.OnNode(testrig.NodeObject(r.node))
	ports := []svcPort{{name: "dns", port: 53, proto: v1.ProtocolUDP, nodePort: nodePort}}
	tr.OnService(nil, service("dns", svcIP, v1.ServiceTypeNodePort, ports...))
	first := slice("dns", "dns-1", ports, ready(r.a.IP))
	tr.OnEndpointSlice(nil, first)
	tr.SetServicesSynced()
	tr.SetSlicesSynced()
	sync := func(full bool) *proxier.Snapshot {
		t.Helper()
		c := tr.Checkout()
		snap := c.Snapshots[proxier.IPv4]
		if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Changed: c.Changed[proxier.IPv4], Full: full}); err != nil {
			t.Fatalf("iptables sync: %v", err)
		}
		return snap
	}

	sync(true)
	udp := r.session(t, svcAddr)
	if got := udp.ask(answerWait); got != "A" {
		t.Fatalf("before the change: answered by %q, want A", got)
	}

	// A is replaced by B; a partial sync moves the rules.
	second := first.DeepCopy()
	second.ResourceVersion = "2"
	second.Endpoints = []discovery.Endpoint{slice("dns", "dns-1", ports, ready(r.b.IP)).Endpoints[0]}
	tr.OnEndpointSlice(first, second)
	snap := sync(false)
	if got := udp.ask(answerWait); got != "A" {
		t.Fatalf("rules moved, no cleanup: answered by %q, want still A (the stale entry)", got)
	}
	if n := r.cleanup(t, snap); n != 1 {
		t.Errorf("deleted %d entries, want 1", n)
	}
	if got := udp.ask(answerWait); got != "B" {
		t.Errorf("after cleanup: answered by %q, want B", got)
	}
}
