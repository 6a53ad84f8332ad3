package userspace

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/kproxy/kproxy/conntrack"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// dnsSnapshot: a UDP Service on 10.96.0.53:53 with NodePort 30053 and the
// given endpoints.
func dnsSnapshot(eps ...proxier.Endpoint) *proxier.Snapshot {
	b := newSnap(proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr(testrig.NodeIP(1))}})
	b.add(proxier.ServicePort{Name: spName("kube-system", "dns", "dns", "UDP"), Protocol: "UDP", ClusterIP: addr("10.96.0.53"), Port: 53, NodePort: 30053}, eps...)
	return b.snap
}

// The real conntrack cleaner, given a sync's Redirects, keeps the entries
// of live UDP flows through the listeners (from a pod, from the node itself
// and to the NodePort from outside): their reply source is the node's
// listener. Without the redirects (as before the fix) it deletes them all.
// When the Service loses its endpoints the entries go, and the client's
// next datagram is refused by the reject rule.
func TestKernelCleanerKeepsListenerFlows(t *testing.T) {
	r := newKernelRig(t, nil)
	n1 := r.topo.Node(1).Netns
	cl := nodeCleaner(t, n1)
	snap := dnsSnapshot(ep("10.244.2.10", 5353, "node2"), ep("10.244.1.11", 5353, "node1"))
	res, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true})
	if err != nil {
		t.Fatal(err)
	}
	var flows []*testrig.UDPFlow
	for _, c := range []struct{ ns, dst string }{
		{r.podNetns(t, "10.244.1.10"), "10.96.0.53:53"},
		{n1, "10.96.0.53:53"},
		{r.topo.Client, testrig.NodeIP(1) + ":30053"},
	} {
		f, err := testrig.OpenUDPFlow(c.ns, c.dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if _, err := f.Ask(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		flows = append(flows, f)
	}
	if n, err := cl.CleanStaleFlows(context.Background(), snap, res.Redirects); n != 0 || err != nil {
		t.Errorf("with the sync's redirects: deleted %d, %v; want 0 of the live flows", n, err)
	}
	if n, err := cl.CleanStaleFlows(context.Background(), snap, nil); n != len(flows) || err != nil {
		t.Errorf("without redirects: deleted %d, %v; want the %d listener flows (what the cleaner did before)", n, err, len(flows))
	}
	for _, f := range flows {
		if _, err := f.Ask(2 * time.Second); err != nil {
			t.Errorf("after the clean-ups: %v", err)
		}
	}

	empty := dnsSnapshot()
	res, err = r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: empty})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := cl.CleanStaleFlows(context.Background(), empty, res.Redirects); n != len(flows) || err != nil {
		t.Errorf("no endpoints: deleted %d, %v; want all %d flows", n, err, len(flows))
	}
	if _, err := flows[0].Ask(time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("no endpoints: the pod's flow got %v, want refused", err)
	}
}

// nodeCleaner is a conntrack cleaner of namespace ns's table.
func nodeCleaner(t *testing.T, ns string) *conntrack.Cleaner {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	cl, err := conntrack.New(conntrack.Options{Family: proxier.IPv4, Netns: &h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}
