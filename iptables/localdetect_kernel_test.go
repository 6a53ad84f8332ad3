package iptables

import (
	"context"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelDetectLocalByInterfacePrefix: with --detect-local-mode
// InterfaceNamePrefix matching the node-side names of the pods' veths,
// real traffic from a pod to a ClusterIP keeps its source while the
// outside client's is masqueraded (the echo server reports what it saw),
// and the ETP=Local short-circuit works for pods. With a prefix that no
// pod interface has, the same pod traffic is masqueraded: the interface
// match is what tells them apart. The chains read back as rendered (the
// "! -i" match sits where iptables-save prints it).
func TestKernelDetectLocalByInterfacePrefix(t *testing.T) {
	r := newKernelRigWith(t, Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByInterfacePrefix(testrig.PodVethPrefix)})
	scenarios := flowtest.Scenarios()
	for _, name := range []string{"basic", "traffic-policy-local"} {
		sc := scenarios[slices.IndexFunc(scenarios, func(s flowtest.Scenario) bool { return s.Name == name })]
		t.Run(name, func(t *testing.T) {
			r.sync(t, sc.Snapshot(), nil, true)
			r.checkReadBack(t)
			for _, c := range sc.Cases {
				pk, err := sc.Packet(&c)
				if err != nil {
					t.Fatal(err)
				}
				r.probeCase(t, &c, pk, 2)
			}
		})
	}

	// One Service, one endpoint on the other node: what its echo server
	// sees is the source after kproxy's rules.
	one := flowtest.Scenario{
		Services: []*v1.Service{flowtest.NewService("web", "10.96.0.10", []v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 0)})},
		Slices: []*discovery.EndpointSlice{flowtest.NewSlice("web-1", "web", []discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)},
			flowtest.EP{IP: "10.244.2.10", Node: flowtest.OtherNode})},
	}
	pod := r.topo.Node(1).Pods[0]
	seen := func(ns string) string {
		t.Helper()
		reply, err := testrig.ProbeTCP(ns, "10.96.0.10:80", 2*time.Second)
		if err != nil {
			t.Fatalf("probe from %s: %v", ns, err)
		}
		return reply.SeenIP()
	}
	r.sync(t, one.Snapshot(), nil, true)
	if got := seen(pod.Netns); got != pod.IP {
		t.Errorf("pod %s (in on %s) to a ClusterIP: endpoint saw %s, want the pod's own address", pod.IP, pod.HostVeth, got)
	}
	if got := seen(r.topo.Client); got != r.topo.Node(1).IP {
		t.Errorf("outside client to a ClusterIP: endpoint saw %s, want node1's address %s (masqueraded)", got, r.topo.Node(1).IP)
	}

	other, err := New(Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByInterfacePrefix("cali"), Kernel: r.kernel})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Sync(context.Background(), proxier.SyncRequest{Snapshot: one.Snapshot(), Full: true}); err != nil {
		t.Fatal(err)
	}
	if got := seen(pod.Netns); got != r.topo.Node(1).IP {
		t.Errorf("with prefix cali, pod to a ClusterIP: endpoint saw %s, want node1's address (not detected as local)", got)
	}
}
