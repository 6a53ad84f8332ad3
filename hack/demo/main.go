// Command demo shows kproxy working on one machine: it starts a real etcd
// and kube-apiserver in a network namespace, a node namespace with three
// pod namespaces running echo servers, creates a Service with three
// endpoints, runs kproxy in iptables mode inside the node and sends
// requests through the ClusterIP (from the node) and the NodePort (from a
// client outside the node), printing which pod answered each time.
//
// Nothing is changed in the machine's root network namespace; everything is
// deleted on exit. Run it as root with hack/demo.sh (which installs and
// builds what is missing).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func main() {
	requests := flag.Int("requests", 30, "requests to send through each Service address")
	mode := flag.String("proxy-mode", "iptables", "kproxy mode to demonstrate (iptables or userspace)")
	flag.Parse()
	s := &testrig.MainScope{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; fmt.Println("interrupted: cleaning up"); s.Close(); os.Exit(2) }()
	err := run(s, *mode, *requests)
	if err != nil {
		s.MarkFailed()
	}
	s.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func step(format string, a ...any) { fmt.Printf("==> "+format+"\n", a...) }

func run(s *testrig.MainScope, mode string, requests int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := testrig.CheckKernel(); err != nil {
		return fmt.Errorf("the demo needs root, iproute2 and iptables (run hack/demo.sh): %w", err)
	}
	step("building kproxy and finding the control-plane binaries")
	kproxy, err := testrig.KproxyBinary()
	if err != nil {
		return err
	}
	if _, err := testrig.EnsureUpstream(true); err != nil {
		return err
	}
	topo, cp, err := startCluster(ctx, s)
	if err != nil {
		return err
	}
	node := topo.Node(1)

	step("creating Service demo/web (port 80 -> 8080, NodePort 30080) with three endpoints")
	svc, err := createService(ctx, cp, node)
	if err != nil {
		return err
	}
	target := svc.Spec.ClusterIP + ":80"
	if err := startKproxy(ctx, s, kproxy, mode, cp, node, target); err != nil {
		return err
	}

	step("%d requests from node1 to the ClusterIP %s", requests, target)
	if err := tally(node.Netns, target, requests); err != nil {
		return err
	}
	nodePort := node.IP + ":30080"
	step("%d requests from the outside client %s to the NodePort %s", requests, testrig.ClientIP, nodePort)
	if err := tally(topo.Client, nodePort, requests); err != nil {
		return err
	}
	if mode == "iptables" {
		if err := printRules(node.Netns); err != nil {
			return err
		}
	}
	step("kproxy's sync metrics (http://127.0.0.1:10249/metrics inside node1)")
	return printMetrics(node.Netns)
}

// startCluster creates the namespaces, starts the control plane with
// node1 registered and an echo server in each pod.
func startCluster(ctx context.Context, s *testrig.MainScope) (*testrig.Topology, *testrig.ControlPlane, error) {
	step("creating network namespaces: a control plane, node1 with three pods, an outside client")
	topo, err := testrig.BuildTopology(s, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 3})
	if err != nil {
		return nil, nil, err
	}
	step("starting etcd and kube-apiserver in %s", topo.Net)
	cp, err := testrig.StartControlPlaneIn(s, topo)
	if err != nil {
		return nil, nil, err
	}
	if err := cp.CreateNodes(ctx, topo); err != nil {
		return nil, nil, err
	}
	for _, pod := range topo.Node(1).Pods {
		if _, err := testrig.StartEchoServersIn(s, pod.Netns, pod.Name, pod.IP, []int{8080}, testrig.TCP); err != nil {
			return nil, nil, err
		}
	}
	return topo, cp, nil
}

// startKproxy starts kproxy in node's namespace and waits until target
// answers through its rules.
func startKproxy(ctx context.Context, s *testrig.MainScope, kproxy, mode string, cp *testrig.ControlPlane, node *testrig.Node, target string) error {
	step("starting kproxy --proxy-mode=%s in %s", mode, node.Netns)
	proc, err := testrig.StartProcessIn(s, node.Netns, kproxy,
		"--kubeconfig="+cp.KubeProxyKubeconfig, "--proxy-mode="+mode, "--hostname-override="+node.Name,
		"--cluster-cidr="+testrig.ClusterCIDR, "--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256", "--conntrack-max-per-core=0")
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		_, err := testrig.ProbeTCP(node.Netns, target, time.Second)
		return err == nil
	}); err != nil {
		return fmt.Errorf("kproxy did not program %s: %w\n%s", target, err, proc.Tail(30))
	}
	return nil
}

// printRules prints the nat rules of demo/web and its endpoints.
func printRules(netns string) error {
	step("the rules kproxy wrote for demo/web (iptables-save -t nat, inside node1)")
	out, err := testrig.Exec(netns, "iptables-save", "-t", "nat")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "demo/web") || strings.HasPrefix(line, "-A KUBE-SEP") {
			fmt.Println("   ", line)
		}
	}
	return nil
}

func createService(ctx context.Context, cp *testrig.ControlPlane, node *testrig.Node) (*v1.Service, error) {
	c := cp.Client
	if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	svc, err := c.CoreV1().Services("demo").Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: v1.ServiceSpec{Type: v1.ServiceTypeNodePort, Ports: []v1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080, Protocol: v1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	es := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{
			discovery.LabelServiceName: "web", discovery.LabelManagedBy: "kproxy-demo"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, p := range node.Pods {
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{p.IP}, NodeName: ptr.To(node.Name),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	_, err = c.DiscoveryV1().EndpointSlices("demo").Create(ctx, es, metav1.CreateOptions{})
	return svc, err
}

// tally sends n requests, each on a new connection, and prints how many
// each pod answered.
func tally(ns, addr string, n int) error {
	counts := map[string]int{}
	for range n {
		r, err := testrig.ProbeTCP(ns, addr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("request to %s: %w", addr, err)
		}
		counts[r.Name+" (saw source "+r.SeenIP()+")"]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("    %-45s %3d %s\n", k, counts[k], strings.Repeat("#", counts[k]))
	}
	return nil
}

func printMetrics(ns string) error {
	// Sockets must be opened inside the node namespace: dial through it.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return testrig.DialContextInNetns(ctx, ns, network, addr)
		}}}
	resp, err := client.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	body := string(b)
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_duration_seconds_count") ||
			strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_duration_seconds_sum") ||
			strings.HasPrefix(l, "kubeproxy_sync_proxy_rules_iptables_total") ||
			strings.HasPrefix(l, "kubeproxy_network_programming_duration_seconds_count") {
			fmt.Println("   ", l)
		}
	}
	return nil
}

func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
