package userspace

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// kernelRig is flowtest's 2-node topology (echo servers named "ip:port" on
// every pod) and a Proxier serving node1 in-process: its sockets are opened
// inside node1's namespace, its rules written there by the real binaries.
type kernelRig struct {
	topo *testrig.Topology
	p    *Proxier
	reg  *prometheus.Registry
	echo map[string]*testrig.EchoServers // by "ip:port"
}

func newKernelRig(t *testing.T, mod func(*Options)) *kernelRig {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo, echo := flowtest.NewKernelTopology(t)
	r := &kernelRig{topo: topo, reg: prometheus.NewRegistry(), echo: echo}
	n1 := topo.Node(1).Netns
	opts := Options{
		Family:        proxier.IPv4,
		LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR)),
		Kernel:        netnsRunner(t, proxier.IPv4, n1),
		Sockets:       netnsSockets{ns: n1},
		Registerer:    r.reg,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	ctx, stopSweeper := context.WithCancel(context.Background())
	go p.Run(ctx)
	t.Cleanup(func() {
		stopSweeper()
		if err := p.Cleanup(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if out := testrig.Run(t, n1, "iptables-save"); strings.Contains(out, "KPROXY-US") {
			t.Errorf("cleanup left rules behind:\n%s", out)
		}
	})
	return r
}

func (r *kernelRig) sync(t *testing.T, snap *proxier.Snapshot) {
	t.Helper()
	if _, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// podNetns returns the namespace of the pod with this IP.
func (r *kernelRig) podNetns(t *testing.T, ip string) string {
	t.Helper()
	for _, pod := range r.topo.Pods() {
		if pod.IP == ip {
			return pod.Netns
		}
	}
	t.Fatalf("no pod %s", ip)
	return ""
}

// TestKernelFlowTable runs the shared packet-flow table with real packets.
// The endpoint always sees the node's address in this mode (the proxy
// dials from the node), so the masquerade column does not apply.
func TestKernelFlowTable(t *testing.T) {
	r := newKernelRig(t, nil)
	prober := flowtest.KernelProber{Topo: r.topo, EndpointSeesNode: true}
	prober.RunScenarios(t, func(t *testing.T, sc *flowtest.Scenario) { r.sync(t, sc.Snapshot()) })
}

const webIP = "10.96.0.10:80"

func webSnapshot(affinity int32, eps ...string) *proxier.Snapshot {
	b := newSnap(proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr(testrig.NodeIP(1))}})
	var es []proxier.Endpoint
	for _, e := range eps {
		ap := netip.MustParseAddrPort(e)
		node := "node2"
		if strings.HasPrefix(e, "10.244.1.") {
			node = "node1"
		}
		es = append(es, ep(ap.Addr().String(), int32(ap.Port()), node))
	}
	b.add(proxier.ServicePort{Name: spName("default", "web", "http", ""), ClusterIP: addr("10.96.0.10"), Port: 80, NodePort: 30080, AffinityTimeout: affinity}, es...)
	return b.snap
}

func probeN(t *testing.T, ns, dst string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := range n {
		reply, err := testrig.ProbeTCP(ns, dst, 2*time.Second)
		if err != nil {
			t.Fatalf("probe %d of %d to %s: %v", i+1, n, dst, err)
		}
		seen[reply.Name]++
	}
	return seen
}

func TestKernelRoundRobinExact(t *testing.T) {
	r := newKernelRig(t, nil)
	eps := []string{"10.244.1.10:8080", "10.244.2.10:8080", "10.244.2.11:8080"}
	r.sync(t, webSnapshot(0, eps...))
	seen := probeN(t, r.podNetns(t, "10.244.1.12"), webIP, 30)
	for _, e := range eps {
		if seen[e] != 10 {
			t.Errorf("round robin over 30 connections: %v, want exactly 10 each", seen)
			break
		}
	}
}

func TestKernelAffinity(t *testing.T) {
	r := newKernelRig(t, nil)
	r.sync(t, webSnapshot(60, "10.244.1.10:8080", "10.244.2.10:8080", "10.244.2.11:8080"))
	if seen := probeN(t, r.podNetns(t, "10.244.1.12"), webIP, 12); len(seen) != 1 {
		t.Errorf("ClientIP affinity: one client reached %v, want one endpoint", seen)
	}
	// Another client is bound independently (to the next endpoint in turn).
	if seen := probeN(t, r.topo.Client, testrig.NodeIP(1)+":30080", 6); len(seen) != 1 {
		t.Errorf("ClientIP affinity over the node port: %v, want one endpoint", seen)
	}
}

// One endpoint dies without the endpoints being updated: every client
// connection still succeeds (the proxy retries on the next endpoint).
func TestKernelDeadEndpointCostsNothing(t *testing.T) {
	r := newKernelRig(t, nil)
	r.sync(t, webSnapshot(0, "10.244.1.10:8080", "10.244.2.10:8080", "10.244.2.11:8080"))
	r.echo["10.244.2.10:8080"].Close()
	seen := probeN(t, r.podNetns(t, "10.244.1.12"), webIP, 60)
	if seen["10.244.2.10:8080"] != 0 || seen["10.244.1.10:8080"]+seen["10.244.2.11:8080"] != 60 {
		t.Errorf("with one endpoint dead: %v", seen)
	}
	if f := testutil.ToFloat64(r.p.metrics.dialFailures.WithLabelValues("default/web:http/TCP")); f < 1 {
		t.Errorf("dial failures = %v, want at least 1", f)
	}
	if f := testutil.ToFloat64(r.p.metrics.retries.WithLabelValues("default/web:http/TCP")); f < 1 {
		t.Errorf("retries = %v, want at least 1", f)
	}
}

func TestKernelUDPQueryAnswer(t *testing.T) {
	r := newKernelRig(t, nil)
	b := newSnap(proxier.NodeInfo{Name: "node1", IPs: []netip.Addr{addr(testrig.NodeIP(1))}})
	b.add(proxier.ServicePort{Name: spName("kube-system", "dns", "dns", "UDP"), Protocol: "UDP", ClusterIP: addr("10.96.0.53"), Port: 53, NodePort: 30053},
		ep("10.244.2.10", 5353, "node2"), ep("10.244.1.11", 5353, "node1"))
	r.sync(t, b.snap)
	// A connected UDP socket only accepts the answer if it comes from the
	// address it sent to: every answer proves the reply source is right.
	for _, c := range []struct{ ns, dst string }{
		{r.podNetns(t, "10.244.1.10"), "10.96.0.53:53"},
		{r.topo.Node(1).Netns, "10.96.0.53:53"},
		{r.topo.Client, testrig.NodeIP(1) + ":30053"},
	} {
		for range 3 {
			reply, err := testrig.ProbeUDP(c.ns, c.dst, 2*time.Second)
			if err != nil {
				t.Errorf("UDP query from %s to %s: %v", c.ns, c.dst, err)
				continue
			}
			if reply.Name != "10.244.2.10:5353" && reply.Name != "10.244.1.11:5353" {
				t.Errorf("UDP answer from unexpected endpoint %q", reply.Name)
			}
		}
	}
}

// An endpoint removed while a connection to it is open: the connection
// keeps working, new connections avoid the endpoint.
func TestKernelRemovedEndpointDrains(t *testing.T) {
	r := newKernelRig(t, nil)
	r.sync(t, webSnapshot(0, "10.244.1.10:8080", "10.244.2.10:8080"))
	conn, err := testrig.DialInNetns(r.podNetns(t, "10.244.1.12"), "tcp4", webIP, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	greeting, err := rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(greeting, " ")
	var other string
	for _, e := range []string{"10.244.1.10:8080", "10.244.2.10:8080"} {
		if e != first {
			other = e
		}
	}
	r.sync(t, webSnapshot(0, other))
	for i := range 3 {
		msg := fmt.Sprintf("still there %d\n", i)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatalf("write on the draining connection: %v", err)
		}
		if got, err := rd.ReadString('\n'); err != nil || got != msg {
			t.Fatalf("echo on the draining connection: %q, %v", got, err)
		}
	}
	if seen := probeN(t, r.podNetns(t, "10.244.1.12"), webIP, 6); seen[first] != 0 {
		t.Errorf("new connections reached the removed endpoint %s: %v", first, seen)
	}
}

// With a drain limit, a connection to a removed endpoint is cut after it.
func TestKernelDrainLimit(t *testing.T) {
	r := newKernelRig(t, func(o *Options) { o.DrainTimeout = 300 * time.Millisecond })
	r.sync(t, webSnapshot(0, "10.244.2.10:8080"))
	conn, err := testrig.DialInNetns(r.podNetns(t, "10.244.1.12"), "tcp4", webIP, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.sync(t, webSnapshot(0, "10.244.2.11:8080"))
	if _, err := rd.ReadString('\n'); err == nil {
		t.Fatal("read more data, want the connection closed after the drain limit")
	}
}

func TestKernelNodePortFromOutside(t *testing.T) {
	r := newKernelRig(t, nil)
	r.sync(t, webSnapshot(0, "10.244.1.10:8080", "10.244.2.10:8080"))
	if seen := probeN(t, r.topo.Client, testrig.NodeIP(1)+":30080", 4); len(seen) != 2 {
		t.Errorf("node port from outside reached %v, want both endpoints", seen)
	}
	r.sync(t, webSnapshot(0))
	for _, dst := range []string{testrig.NodeIP(1) + ":30080", webIP} {
		if _, err := testrig.ProbeTCP(r.topo.Client, dst, 2*time.Second); testrig.Classify(err) != testrig.Refused {
			t.Errorf("%s without endpoints: %v, want refused", dst, err)
		}
	}
}

// Every endpoint is replaced, one at a time, under constant load: the new
// one is added, the old one removed, and the old server stops once its
// connections are done (a graceful pod termination). No request may fail.
func TestKernelRollingReplacementUnderLoad(t *testing.T) {
	r := newKernelRig(t, nil)
	old := []string{"10.244.1.10:8080", "10.244.2.10:8080", "10.244.2.11:8080"}
	repl := []string{"10.244.1.10:5353", "10.244.2.10:5353", "10.244.2.11:5353"}
	cur := append([]string{}, old...)
	r.sync(t, webSnapshot(0, cur...))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		ok, failed int
		firstErr   error
	}
	results := make(chan result, 4)
	for w := range 4 {
		ns := r.podNetns(t, []string{"10.244.1.11", "10.244.1.12", "10.244.2.12", "10.244.1.11"}[w])
		if w == 2 {
			ns = r.topo.Node(1).Netns
		}
		go func() {
			var res result
			for ctx.Err() == nil {
				if _, err := testrig.ProbeTCP(ns, webIP, 2*time.Second); err != nil {
					res.failed++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					res.ok++
				}
			}
			results <- res
		}()
	}
	for i := range old {
		cur = append(cur, repl[i])
		r.sync(t, webSnapshot(0, cur...))
		time.Sleep(100 * time.Millisecond) // let load reach the new endpoint
		cur = cur[1:]
		r.sync(t, webSnapshot(0, cur...))
		es := r.echo[old[i]]
		for deadline := time.Now().Add(5 * time.Second); es.OpenConns() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		es.Close()
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	var total result
	for range 4 {
		res := <-results
		total.ok += res.ok
		total.failed += res.failed
		if total.firstErr == nil {
			total.firstErr = res.firstErr
		}
	}
	t.Logf("rolling replacement: %d requests answered, %d failed", total.ok, total.failed)
	if total.failed != 0 || total.ok < 100 {
		t.Errorf("rolling replacement: %d answered, %d failed (first error: %v)", total.ok, total.failed, total.firstErr)
	}
}

// netnsRunner runs the iptables binaries in network namespace ns.
func netnsRunner(t *testing.T, f proxier.Family, ns string) *xtables.Runner {
	t.Helper()
	r, err := xtables.NewRunner(xtables.RunnerConfig{Family: f, Netns: ns})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
