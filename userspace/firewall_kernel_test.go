package userspace

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// wantAnswer and wantDropped probe dst from ns with real packets.
func wantAnswer(t *testing.T, proto testrig.Proto, ns, dst, what string) {
	t.Helper()
	if _, err := testrig.Probe(ns, proto, dst, 2*time.Second); err != nil {
		t.Errorf("%s (%s): %v, want an answer", what, dst, err)
	}
}

func wantDropped(t *testing.T, proto testrig.Proto, ns, dst, what string) {
	t.Helper()
	r, err := testrig.Probe(ns, proto, dst, 500*time.Millisecond)
	// A datagram the node itself sends and its own filter OUTPUT drops
	// fails at once with EPERM: dropped too.
	if testrig.Classify(err) != testrig.Timeout && !errors.Is(err, syscall.EPERM) {
		t.Errorf("%s (%s): %s (reply %+v, err %v), want it dropped", what, dst, testrig.Classify(err), r, err)
	}
}

// The listeners are bound to the wildcard address, but a connection (or
// datagram) sent straight to a proxy port, from outside, from a pod or from
// the node itself, is dropped: proxy ports are reachable only through the
// redirect of a service address, which enforces the ranges, the Local
// policies and keeps ClusterIP-only Services inside the cluster.
func TestKernelProxyPortsOnlyThroughServiceAddresses(t *testing.T) {
	r := newKernelRig(t, nil)
	b := newSnap(proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr(testrig.NodeIP(1))}})
	b.add(proxier.ServicePort{Name: spName("default", "internal", "http", ""), ClusterIP: addr("10.96.0.11"), Port: 80},
		ep("10.244.2.10", 8080, "node2"))
	b.add(proxier.ServicePort{Name: spName("default", "np", "http", ""), ClusterIP: addr("10.96.0.12"), Port: 80, NodePort: 30012},
		ep("10.244.2.10", 8080, "node2"))
	b.add(proxier.ServicePort{Name: spName("default", "dns", "dns", "UDP"), Protocol: "UDP", ClusterIP: addr("10.96.0.53"), Port: 53},
		ep("10.244.2.10", 5353, "node2"))
	r.sync(t, b.snap)
	pod := r.podNetns(t, "10.244.1.10")
	node := r.topo.Node(1).Netns
	wantAnswer(t, testrig.TCP, pod, "10.96.0.11:80", "pod to a ClusterIP")
	wantAnswer(t, testrig.TCP, node, "10.96.0.11:80", "node to a ClusterIP")
	wantAnswer(t, testrig.TCP, r.topo.Client, testrig.NodeIP(1)+":30012", "outside to a node port")
	wantAnswer(t, testrig.UDP, pod, "10.96.0.53:53", "pod to a UDP ClusterIP")
	ls := r.p.Listeners()
	if len(ls) != 4 {
		t.Fatalf("listeners %v, want 4", ls)
	}
	for _, l := range ls {
		proto := testrig.TCP
		if l.Name.Protocol == "UDP" {
			proto = testrig.UDP
		}
		what := fmt.Sprintf("%s proxy port of %s (external %v)", l.Name.Protocol, l.Name, l.External)
		wantDropped(t, proto, r.topo.Client, fmt.Sprintf("%s:%d", testrig.NodeIP(1), l.ProxyPort), "outside straight to the "+what)
		wantDropped(t, proto, pod, fmt.Sprintf("10.244.1.1:%d", l.ProxyPort), "pod straight to the "+what)
		wantDropped(t, proto, node, fmt.Sprintf("127.0.0.1:%d", l.ProxyPort), "node straight to the "+what)
	}
	// The redirected traffic still works after the direct attempts.
	wantAnswer(t, testrig.TCP, pod, "10.96.0.11:80", "pod to a ClusterIP")
}

// externalTrafficPolicy=Local without a local endpoint: pods and the node
// are short-circuited to the Cluster endpoints, but loadBalancerSourceRanges
// still apply to them (upstream checks the ranges first).
func TestKernelSourceRangesApplyToShortCircuitedSources(t *testing.T) {
	r := newKernelRig(t, nil)
	b := newSnap(proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr(testrig.NodeIP(1))}})
	b.add(proxier.ServicePort{Name: spName("default", "lb", "http", ""), ClusterIP: addr("10.96.0.13"), Port: 80, NodePort: 30013,
		LoadBalancerIPs: []netip.Addr{addr("10.96.201.13")}, ExternalPolicyLocal: true,
		SourceRanges: []netip.Prefix{netip.MustParsePrefix("10.244.1.10/32")}, HasSourceRanges: true},
		ep("10.244.2.10", 8080, "node2"))
	r.sync(t, b.snap)
	wantAnswer(t, testrig.TCP, r.podNetns(t, "10.244.1.10"), "10.96.201.13:80", "pod inside the ranges to the LB IP")
	wantDropped(t, testrig.TCP, r.podNetns(t, "10.244.1.11"), "10.96.201.13:80", "pod outside the ranges to the LB IP")
	wantDropped(t, testrig.TCP, r.topo.Node(1).Netns, "10.96.201.13:80", "node (outside the ranges) to the LB IP")
	wantDropped(t, testrig.TCP, r.topo.Client, "10.96.201.13:80", "outside client to the LB IP (no local endpoint)")
	// The ClusterIP has no ranges.
	wantAnswer(t, testrig.TCP, r.podNetns(t, "10.244.1.11"), "10.96.0.13:80", "pod to the ClusterIP")
}
