package main

import (
	"net"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestE2EDualStack runs the kproxy binary (iptables mode) against a real
// dual-stack apiserver (service ranges 10.96.0.0/16 and fd00:10:96::/108)
// in a dual-stack topology: a RequireDualStack NodePort Service with an
// IPv4 and an IPv6 EndpointSlice naming different pods. Real TCP and UDP
// traffic to each ClusterIP reaches exactly the endpoints of its family
// (every one of them, and no other), from a pod without masquerading and
// from the node; so does each family's NodePort from the outside client.
// Needs root and the upstream binaries; about 10 s.
func TestE2EDualStack(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	ctx := t.Context()

	topo, cp, bin := testrig.StartCluster(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 3, IPv6: true})
	// Each echo server is named by the address it listens on.
	for _, p := range topo.Pods() {
		for _, ip := range []string{p.IP, p.IPv6} {
			testrig.StartEchoServers(t, p.Netns, ip, ip, []int{8080}, testrig.TCPUDP)
		}
	}
	node := topo.Node(1)
	kp := testrig.StartProcess(t, node.Netns, testrig.KproxyArgs(bin, cp, node,
		"--cluster-cidr="+testrig.ClusterCIDR+","+testrig.ClusterCIDRv6)...)

	all := topo.Pods()
	s := service("dual", v1.ServiceTypeNodePort, tcpPort("http", 80), udpPort("dns", 53))
	policy := v1.IPFamilyPolicyRequireDualStack
	s.Spec.IPFamilyPolicy = &policy
	s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	svc := mustCreateService(t, cp.Client.CoreV1().Services("default"), s)
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("the apiserver gave the dual-stack Service ClusterIPs %v", svc.Spec.ClusterIPs)
	}
	// Different pods per family (pod0 and pod1 of each node): an answer
	// proves the family's own slice. Pod 2 of node1 is the client, never an
	// endpoint, so its traffic is not hairpin (which is masqueraded).
	v4 := slice("dual", "dual-v4", readyEndpoints(all[0], all[3])...)
	v6pods := []*testrig.Pod{all[1], all[4]}
	v6 := slice("dual", "dual-v6", readyEndpoints(v6pods...)...)
	v6.AddressType = discovery.AddressTypeIPv6
	for i, p := range v6pods {
		v6.Endpoints[i].Addresses = []string{p.IPv6}
	}
	for _, sl := range []*discovery.EndpointSlice{v4, v6} {
		if _, err := cp.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	podNS := node.Pods[2].Netns
	// Two endpoints per family: one is missed in 40 probes with a chance
	// of 2^-39. probeExactly stops as soon as both answered.
	const exactTries = 40
	families := []struct {
		name, clusterIP, nodeIP, podIP string
		want                           []string
	}{
		{"IPv4", svc.Spec.ClusterIPs[0], node.IP, node.Pods[2].IP, []string{all[0].IP, all[3].IP}},
		{"IPv6", svc.Spec.ClusterIPs[1], node.IPv6, node.Pods[2].IPv6, []string{all[1].IPv6, all[4].IPv6}},
	}
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			vip := net.JoinHostPort(f.clusterIP, "80")
			waitAnswered(t, kp, podNS, vip)
			for _, proto := range []testrig.Proto{testrig.TCP, testrig.UDP} {
				port := "80"
				if proto == testrig.UDP {
					port = "53"
				}
				addr := net.JoinHostPort(f.clusterIP, port)
				t.Logf("%s ClusterIP %s from a pod: %v", proto, addr, probeExactly(t, podNS, proto, addr, f.want, exactTries))
				t.Logf("%s ClusterIP %s from the node: %v", proto, addr, probeExactly(t, node.Netns, proto, addr, f.want, exactTries))
			}
			// Pod traffic keeps its source: the cluster CIDR of this family
			// is known, so it is not masqueraded.
			if r, err := testrig.ProbeTCP(podNS, vip, 2*time.Second); err != nil || r.SeenIP() != f.podIP {
				t.Errorf("pod to ClusterIP %s: %+v, %v; want the pod's own source %s", vip, r, err, f.podIP)
			}
			np := net.JoinHostPort(f.nodeIP, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
			t.Logf("NodePort %s from the client: %v", np, probeExactly(t, topo.Client, testrig.TCP, np, f.want, exactTries))
		})
	}
	m, err := testrig.ScrapeMetrics(node.Netns, testrig.KproxyMetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"IPv4", "IPv6"} {
		if m[`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="`+fam+`"}`] == 0 {
			t.Errorf("kproxy reports no %s sync", fam)
		}
	}
}

// waitAnswered waits until addr answers from ns (kproxy has programmed the
// Service), with a bound; it fails the test with kproxy's log otherwise.
func waitAnswered(t *testing.T, kp *testrig.Process, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		_, err := testrig.ProbeTCP(ns, addr, time.Second)
		if err == nil {
			return
		}
		if exited, werr := kp.Exited(); exited {
			t.Fatalf("kproxy exited (%v):\n%s", werr, kp.Tail(40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s from %s: %v after 45s; kproxy log:\n%s", addr, ns, err, kp.Tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
