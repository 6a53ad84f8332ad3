package nftables

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelTakeOverFromKubeProxy replaces upstream kube-proxy v1.37.2 in
// nftables mode on node1 with this mode while a pod of node1 connects to
// a ClusterIP in a loop: kube-proxy is stopped (its table stays), the
// Proxier syncs the same Services into that table, and no connection may
// fail. The table then equals the one a sync into an empty namespace
// writes (nothing of kube-proxy's is left), and, rule for rule, the one
// kube-proxy wrote, but for one known difference.
func TestKernelTakeOverFromKubeProxy(t *testing.T) {
	testrig.RequireRoot(t)
	upstream := testrig.RequireUpstream(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 2})
	cp := testrig.StartControlPlane(t, topo)
	ctx := t.Context()
	if err := cp.CreateNodes(ctx, topo); err != nil {
		t.Fatal(err)
	}
	node := topo.Node(1)
	backends := topo.Node(2).Pods
	for _, p := range backends {
		testrig.StartEchoServers(t, p.Netns, p.Name, p.IP, []int{8080}, testrig.TCP)
	}
	svc := createWebService(t, cp, backends)
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	client := node.Pods[0].Netns

	kubeProxy := testrig.StartProcess(t, node.Netns, filepath.Join(upstream, testrig.BinKubeProxy),
		"--kubeconfig="+cp.KubeProxyKubeconfig, "--proxy-mode=nftables", "--hostname-override="+node.Name,
		"--cluster-cidr="+testrig.ClusterCIDR, "--metrics-bind-address=127.0.0.1:10249", "--healthz-bind-address=127.0.0.1:10256",
		"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0")
	waitAnswered(t, client, vip, 60*time.Second)
	loop := startProbeLoop(client, vip)
	defer loop.stop()
	loop.waitAnswers(t, 10)
	upstreamTable := listTableIn(t, node.Netns)
	if err := kubeProxy.Stop(); err != nil {
		t.Fatal(err)
	}
	nodeObj, err := cp.Client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := apiSnapshot(t, cp, nodeObj)

	r := &kernelRig{topo: topo, nft: newNetnsNFT(t, proxier.IPv4, node.Netns)}
	if _, err := r.nft.List(ctx, "chains"); err != nil {
		t.Fatalf("kube-proxy left no table to take over: %v", err)
	}
	// kube-proxy's defaults in nftables mode: NodePorts on the primary IP.
	opts := Options{Family: proxier.IPv4, NFT: r.nft, LocalDetector: flowOptions().LocalDetector, NodePortAddresses: []string{"primary"}}
	if r.p, err = New(opts); err != nil {
		t.Fatal(err)
	}
	r.sync(t, snap)
	loop.waitAnswers(t, loop.answered.Load()+10)
	time.Sleep(staleChainDelay + 100*time.Millisecond)
	r.sync(t, snap)
	loop.waitAnswers(t, loop.answered.Load()+10)
	loop.stop()
	if f := loop.failed.Load(); f != 0 {
		t.Errorf("%d of %d connections failed during the take-over; first: %v", f, f+loop.answered.Load(), loop.firstErr.Load())
	}
	got := r.listTable(t)
	// kube-proxy's own table for the same objects, ServiceCIDR drop
	// included, is the same but for the endpoint choice's form (README,
	// "Differences from kube-proxy").
	neutral := testrig.NeutralEndpointChoiceListing
	if d := lineDiff(neutral(got), neutral(upstreamTable)); strings.TrimSpace(d) != "" {
		t.Errorf("table differs from kube-proxy's:\n%s", d)
	}
	if err := r.p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	r.sync(t, snap)
	if want := r.listTable(t); got != want {
		t.Errorf("table after the take-over differs from a fresh sync's:\n%s", lineDiff(got, want))
	}
}

// createWebService creates Service default/web (port 80 to 8080/TCP)
// with an EndpointSlice of backends, deleted when the test ends.
func createWebService(t *testing.T, cp *testrig.ControlPlane, backends []*testrig.Pod) *v1.Service {
	t.Helper()
	ctx := t.Context()
	svc, err := cp.Client.CoreV1().Services("default").Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       v1.ServiceSpec{Ports: []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name, port, proto, ready := "http", int32(8080), v1.ProtocolTCP, true
	sl := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	for _, p := range backends {
		sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{Addresses: []string{p.IP}, NodeName: &p.Node.Name,
			Conditions: discovery.EndpointConditions{Ready: &ready}})
	}
	if _, err = cp.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client.DiscoveryV1().EndpointSlices("default").Delete(context.Background(), "web-1", metav1.DeleteOptions{})
		_ = cp.Client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
	})
	return svc
}

// apiSnapshot is the IPv4 snapshot of every Service, EndpointSlice and
// ServiceCIDR in the API server (the "kubernetes" Service and the default
// ServiceCIDR too), as kube-proxy sees them.
func apiSnapshot(t *testing.T, cp *testrig.ControlPlane, node *v1.Node) *proxier.Snapshot {
	t.Helper()
	svcs, err := cp.Client.CoreV1().Services("").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices, err := cp.Client.DiscoveryV1().EndpointSlices("").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cidrs, err := cp.Client.NetworkingV1().ServiceCIDRs().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr := proxier.NewTracker(node.Name, []proxier.Family{proxier.IPv4}, nil, time.Time{})
	tr.OnNode(node)
	for i := range cidrs.Items {
		tr.OnServiceCIDR(nil, &cidrs.Items[i])
	}
	for i := range svcs.Items {
		tr.OnService(nil, &svcs.Items[i])
	}
	for i := range slices.Items {
		tr.OnEndpointSlice(nil, &slices.Items[i])
	}
	return tr.Checkout().Snapshots[proxier.IPv4]
}

// waitAnswered probes vip from ns until it answers (bounded).
func waitAnswered(t *testing.T, ns, vip string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, err := testrig.ProbeTCP(ns, vip, 2*time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered from %s within %v: %v", vip, ns, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// probeLoop opens fresh connections to a VIP until stopped, counting them.
type probeLoop struct {
	answered, failed atomic.Int64
	firstErr         atomic.Value
	done             chan struct{}
	quit             atomic.Bool
}

func startProbeLoop(ns, vip string) *probeLoop {
	l := &probeLoop{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for !l.quit.Load() {
			if _, err := testrig.ProbeTCP(ns, vip, 2*time.Second); err != nil {
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
			} else {
				l.answered.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return l
}

// waitAnswers waits (bounded) until n connections have been answered.
func (l *probeLoop) waitAnswers(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.answered.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d connections answered (%d failed: %v)", l.answered.Load(), n, l.failed.Load(), l.firstErr.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *probeLoop) stop() {
	l.quit.Store(true)
	<-l.done
}
