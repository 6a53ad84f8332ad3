package testrig

import (
	"context"
	"net"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUpstreamKubeProxyClusterIP runs upstream kube-proxy (iptables mode) in
// node1 against the rig's control plane and reaches a ClusterIP from a pod and
// from the node: the whole rig end to end, and the baseline kproxy must match.
func TestUpstreamKubeProxyClusterIP(t *testing.T) {
	RequireRoot(t)
	CheckRootNetnsUnchanged(t)
	bin := RequireUpstream(t)
	topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 1})
	cp := StartControlPlane(t, topo)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cp.CreateNodes(ctx, topo); err != nil {
		t.Fatal(err)
	}
	backend := topo.Node(2).Pods[0]
	StartEchoServers(t, backend.Netns, backend.Name, backend.IP, []int{8080}, TCP)
	svc, eps := webService(backend.IP)
	eps.Endpoints[0].NodeName = &backend.Node.Name
	svc, err := cp.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, eps, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	node := topo.Node(1)
	StartProcess(t, node.Netns, bin+"/"+BinKubeProxy,
		"--kubeconfig="+cp.KubeProxyKubeconfig,
		"--proxy-mode=iptables",
		"--hostname-override="+node.Name,
		"--cluster-cidr="+ClusterCIDR,
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
		"--conntrack-max-per-core=0", // nf_conntrack_max is host-wide: never touch it
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--iptables-min-sync-period=0",
	)
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	start := time.Now()
	var r Reply
	for {
		r, err = ProbeTCP(node.Pods[0].Netns, vip, time.Second)
		if err == nil || time.Since(start) > 30*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ClusterIP %s from %s never answered: %v", vip, node.Pods[0].Name, err)
	}
	t.Logf("ClusterIP answered %v after kube-proxy start: %+v", time.Since(start).Round(time.Millisecond), r)
	if r.Name != backend.Name {
		t.Errorf("answered by %s, want %s", r.Name, backend.Name)
	}
	// From the node itself (OUTPUT path), too.
	if r, err := ProbeTCP(node.Netns, vip, 2*time.Second); err != nil || r.Name != backend.Name {
		t.Errorf("ClusterIP from node1: %+v, %v", r, err)
	}
}
