package main

import (
	"net"
	"strconv"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestE2ENFTables runs the kproxy binary in nftables mode against a real
// apiserver: ClusterIP and NodePort traffic follows Service and
// EndpointSlice changes, the table always equals a fresh
// "kproxy render --proxy-mode=nftables" of the apiserver's objects, and
// --cleanup removes it. Mode switches are cmd/kproxy/faults' TestModeSwitch.
func TestE2ENFTables(t *testing.T) {
	ctx := t.Context()
	e, scratch := startE2E(t, ModeNFTables)
	topo, cp, bin := e.topo, e.cp, e.bin

	podNS := e.node.Pods[1].Netns
	svcs := cp.Client.CoreV1().Services("default")
	slicesAPI := cp.Client.DiscoveryV1().EndpointSlices("default")
	all := topo.Pods()
	name := func(p *testrig.Pod) string { return p.Name }

	svc := mustCreateService(t, svcs, service("web", v1.ServiceTypeNodePort, tcpPort("http", 80)))
	if _, err := slicesAPI.Create(ctx, slice("web", "web-1", readyEndpoints(all[0], all[2])...), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitConverged(ctx, scratch, "web created")
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	np := net.JoinHostPort(e.node.IP, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
	want := []string{name(all[0]), name(all[2])}
	t.Logf("ClusterIP %s: %v", vip, probeExactly(t, podNS, testrig.TCP, vip, want, 30))
	t.Logf("NodePort %s: %v", np, probeExactly(t, topo.Client, testrig.TCP, np, want, 30))

	setEndpoints(t, slicesAPI, "web-1", readyEndpoints(all[3]))
	e.waitConverged(ctx, scratch, "web endpoints moved")
	probeNames(t, podNS, testrig.TCP, vip, []string{name(all[3])}, 5)
	probeNames(t, topo.Client, testrig.TCP, np, []string{name(all[3])}, 5)

	gone := mustCreateService(t, svcs, service("gone", v1.ServiceTypeClusterIP, tcpPort("http", 80)))
	e.waitConverged(ctx, scratch, "gone created")
	mustDelete(t, svcs.Delete(ctx, "gone", metav1.DeleteOptions{}))
	e.waitConverged(ctx, scratch, "gone deleted")
	t.Logf("deleted ClusterIP: %v", expectNoAnswer(t, podNS, net.JoinHostPort(gone.Spec.ClusterIP, "80")))

	if out, err := testrig.Exec(e.node.Netns, bin, "--cleanup", "--conntrack-max-per-core=0"); err != nil {
		t.Fatalf("kproxy --cleanup: %v\n%s", err, out)
	}
	if testrig.NFTTableExists(e.node.Netns) {
		t.Error("table ip kube-proxy left after --cleanup")
	}
}
