package faults

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kproxy/kproxy/internal/testrig"
)

// rig is a 2-node topology with echo servers on every pod (port 8080,
// named by pod IP), a control plane with the Node objects, and the kproxy
// binary; kproxy runs in node1.
type rig struct {
	t    *testing.T
	bin  string
	topo *testrig.Topology
	cp   *testrig.ControlPlane
	node *testrig.Node
	kp   *testrig.Process
	ns   string // API namespace of the test's objects
}

// echoPort is where every pod's echo server listens.
const echoPort = 8080

func newRig(t *testing.T) *rig {
	t.Helper()
	topo, cp, bin := testrig.StartCluster(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 2})
	for _, p := range topo.Pods() {
		testrig.StartEchoServers(t, p.Netns, p.IP, p.IP, []int{echoPort}, testrig.TCPUDP)
	}
	if err := topo.AddClientRoute("10.96.0.0/16", 1); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, bin: bin, topo: topo, cp: cp, node: topo.Node(1), ns: "default"}
	return r
}

// start runs kproxy in node1 (through "env" when env is given).
func (r *rig) start(env []string, extra ...string) *testrig.Process {
	args := testrig.KproxyArgs(r.bin, r.cp, r.node, extra...)
	if len(env) > 0 {
		args = append(append([]string{"env"}, env...), args...)
	}
	r.kp = testrig.StartProcess(r.t, r.node.Netns, args...)
	return r.kp
}

// cleanupKproxy runs "kproxy --cleanup" in node1.
func (r *rig) cleanupKproxy() (string, error) {
	return testrig.Exec(r.node.Netns, r.bin, "--cleanup", "--conntrack-max-per-core=0")
}

// service creates (or updates) a ClusterIP Service ip:80 → 8080 with an
// EndpointSlice of the given pod IPs (no controller runs in the rig).
func (r *rig) service(ctx context.Context, name, ip string, podIPs ...string) error {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns},
		Spec: v1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}},
	}
	sc := r.cp.Client.CoreV1().Services(r.ns)
	if _, err := sc.Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service %s: %w", name, err)
	}
	return r.endpoints(ctx, name, podIPs...)
}

// serviceSet creates Services <tag>0 … <tag><n-1> with the ClusterIPs
// <subnet>.1 … <subnet>.<n>; Service i is backed by backends pods from
// pods()[i] on, round the rig's pods (with one backend, pods()[i%4]: what
// probeStable expects).
func (r *rig) serviceSet(ctx context.Context, tag, subnet string, n, backends int) {
	r.t.Helper()
	pods := r.pods()
	for i := range n {
		var ips []string
		for j := range backends {
			ips = append(ips, pods[(i+j)%len(pods)])
		}
		if err := r.service(ctx, fmt.Sprintf("%s%d", tag, i), fmt.Sprintf("%s.%d", subnet, i+1), ips...); err != nil {
			r.t.Fatal(err)
		}
	}
}

// endpoints creates or replaces the Service's EndpointSlice.
func (r *rig) endpoints(ctx context.Context, name string, podIPs ...string) error {
	return r.applySlice(ctx, name, v1.ProtocolTCP, "http", podIPs...)
}

// applySlice creates or replaces the Service's EndpointSlice: one port
// (portName, proto, the echo port) on the given pods.
func (r *rig) applySlice(ctx context.Context, name string, proto v1.Protocol, portName string, podIPs ...string) error {
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: r.ns, Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To(portName), Port: ptr.To[int32](echoPort), Protocol: ptr.To(proto)}},
	}
	for _, ip := range podIPs {
		node := "node1"
		if strings.HasPrefix(ip, "10.244.2.") {
			node = "node2"
		}
		es.Endpoints = append(es.Endpoints, discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(node),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	if err := testrig.ApplyEndpointSlice(ctx, r.cp.Client, es); err != nil {
		return fmt.Errorf("endpointslice %s: %w", es.Name, err)
	}
	return nil
}

// deleteService removes a Service and its slice.
func (r *rig) deleteService(ctx context.Context, name string) error {
	return testrig.DeleteService(ctx, r.cp.Client, r.ns, name, name+"-1")
}

// pods are the pod IPs of the rig (the echo server names).
func (r *rig) pods() []string {
	var ips []string
	for _, p := range r.topo.Pods() {
		ips = append(ips, p.IP)
	}
	return ips
}

// client is the namespace probes are sent from: pod 0 of node1.
func (r *rig) client() string { return r.node.Pods[0].Netns }

// probe connects once to ip:80 from the client pod; it returns the echo
// server's name or the error.
func (r *rig) probe(ip string, timeout time.Duration) (string, error) {
	reply, err := testrig.ProbeTCP(r.client(), net.JoinHostPort(ip, "80"), timeout)
	return reply.Name, err
}

// waitAnswer waits until ip:80 is answered by one of want.
func (r *rig) waitAnswer(ip string, want []string, within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < within {
		name, err := r.probe(ip, 500*time.Millisecond)
		if err == nil && slices.Contains(want, name) {
			return time.Since(start)
		}
		last = err
		if err == nil {
			last = fmt.Errorf("answered by %s, want one of %v", name, want)
		}
		r.failIfExited()
		time.Sleep(50 * time.Millisecond)
	}
	r.t.Fatalf("%s:80 not answered within %v: %v\n%s", ip, within, last, r.kp.Tail(30))
	return 0
}

func (r *rig) failIfExited() {
	r.t.Helper()
	if r.kp == nil {
		return
	}
	if exited, err := r.kp.Exited(); exited {
		r.t.Fatalf("kproxy exited (%v):\n%s", err, r.kp.Tail(40))
	}
}

// metrics scrapes kproxy's /metrics into "name{labels}" → value.
func (r *rig) metrics() (map[string]float64, error) {
	return testrig.ScrapeMetrics(r.node.Netns, testrig.KproxyMetricsAddr)
}

// metric waits until cond holds for the named metric.
func (r *rig) waitMetric(name string, cond func(float64) bool, within time.Duration) float64 {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		m, err := r.metrics()
		if err == nil && cond(m[name]) {
			return m[name]
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("metric %s: condition not met within %v (last %v, err %v)\n%s", name, within, m[name], err, r.kp.Tail(30))
		}
		r.failIfExited()
		time.Sleep(100 * time.Millisecond)
	}
}

var countersRE = regexp.MustCompile(`\[\d+:\d+\]`)

// save is "iptables-save" of every table in ns, without counters and
// comment lines, so that two dumps of the same rules are equal.
func save(t *testing.T, ns string, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		out, err := testrig.Exec(ns, "iptables-save", "-t", table)
		if err != nil {
			t.Fatalf("iptables-save -t %s: %v", table, err)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "#") || l == "" {
				continue
			}
			b.WriteString(countersRE.ReplaceAllString(l, "[0:0]") + "\n")
		}
	}
	return b.String()
}

var allTables = []string{"raw", "mangle", "nat", "filter"}

// serviceComments lists the "ns/name:port cluster IP" rules in nat
// KUBE-SERVICES (and in its KPROXY-SVCS-* dispatch buckets, used from
// 1,000 entries on): which Services the node's rules serve.
func serviceComments(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(save(t, ns, "nat"), "\n") {
		if (strings.HasPrefix(l, "-A KUBE-SERVICES ") || strings.HasPrefix(l, "-A KPROXY-SVCS-")) && strings.Contains(l, "cluster IP") {
			i := strings.Index(l, `--comment "`)
			j := strings.Index(l[i+11:], `"`)
			out = append(out, strings.TrimSuffix(l[i+11:i+11+j], " cluster IP"))
		}
	}
	slices.Sort(out)
	return out
}
