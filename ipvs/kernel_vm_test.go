package ipvs

// Real-kernel tests. They run inside the qemu VM (TestVM boots it); each
// builds its own namespaces with testrig, runs kproxy's ipvs Proxier in
// node1's namespace and sends real packets.

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

type kernelEnv struct {
	t    *testing.T
	topo *testrig.Topology
	w    *world
	k    Kernel
	p    *Proxier
	opts Options
}

func newKernelEnv(t *testing.T, opts Options) *kernelEnv {
	requireVM(t)
	testrig.RequireRoot(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 2})
	for _, pod := range topo.Pods() {
		testrig.StartEchoServers(t, pod.Netns, pod.Name, pod.IP, []int{8080}, testrig.TCPUDP)
	}
	n1 := topo.Node(1)
	e := &kernelEnv{t: t, topo: topo, w: newWorld(makeNode("node1", n1.IP))}
	e.k = NewKernel(proxier.IPv4, "/run/netns/"+n1.Netns)
	opts.Kernel = e.k
	if !opts.LocalDetector.IsImplemented() {
		opts.LocalDetector = proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16"))
	}
	e.opts = opts
	e.p = e.newProxier()
	return e
}

func (e *kernelEnv) newProxier() *Proxier {
	p, err := New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *kernelEnv) sync(full bool) {
	e.t.Helper()
	c := e.w.checkout()
	if _, err := e.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: c.Snapshots[proxier.IPv4], Changed: c.Changed[proxier.IPv4], Full: full}); err != nil {
		e.t.Fatalf("sync: %v", err)
	}
}

// probe sends n TCP probes from ns and counts the answering endpoints.
func (e *kernelEnv) probe(ns, addr string, n int) (map[string]int, []testrig.Reply) {
	e.t.Helper()
	got := map[string]int{}
	var replies []testrig.Reply
	for range n {
		r, err := testrig.ProbeTCP(ns, addr, 2*time.Second)
		if err != nil {
			got[testrig.Classify(err).String()]++
			continue
		}
		got[r.Name]++
		replies = append(replies, r)
	}
	return got, replies
}

func (e *kernelEnv) pod(node, i int) *testrig.Pod { return e.topo.Node(node).Pods[i] }

func epOf(p *testrig.Pod) ep { return ep(p.IP + "@" + p.Node.Name) }

func TestKernelBalancing(t *testing.T) {
	for _, sched := range []string{"rr", "wrr"} {
		t.Run(sched, func(t *testing.T) {
			e := newKernelEnv(t, Options{Scheduler: sched})
			a, b := e.pod(1, 1), e.pod(2, 0)
			e.w.set(makeService("default", "web", "10.96.0.10", []string{"80"}), epOf(a), epOf(b))
			e.sync(true)
			vss, err := e.k.ListVirtualServers(context.Background())
			if err != nil || vss[VSKey{"TCP", netip.MustParseAddr("10.96.0.10"), 80}] == nil ||
				vss[VSKey{"TCP", netip.MustParseAddr("10.96.0.10"), 80}].Scheduler != sched {
				t.Fatalf("virtual server not as expected: %v %v", vss, err)
			}
			got, replies := e.probe(e.pod(1, 0).Netns, "10.96.0.10:80", 10)
			if got[a.Name] != 5 || got[b.Name] != 5 {
				t.Errorf("%s: 10 connections gave %v, want 5/5", sched, got)
			}
			for _, r := range replies {
				if r.SeenIP() != e.pod(1, 0).IP {
					t.Errorf("pod-to-ClusterIP traffic masqueraded: endpoint saw %s", r.SeenSrc)
				}
			}
		})
	}
}

func TestKernelAffinity(t *testing.T) {
	e := newKernelEnv(t, Options{})
	e.w.set(makeService("default", "sticky", "10.96.0.20", []string{"80"}, affinity(60)), epOf(e.pod(1, 1)), epOf(e.pod(2, 0)))
	e.sync(true)
	got, _ := e.probe(e.pod(1, 0).Netns, "10.96.0.20:80", 6)
	if len(got) != 1 {
		t.Errorf("ClientIP affinity: 6 connections went to %v, want one endpoint", got)
	}
}

// NodePort from outside the node, to an endpoint on the other node: only
// works if it is masqueraded (the endpoint would answer the client
// directly otherwise), and the endpoint sees the node's address.
func TestKernelNodePortMasquerade(t *testing.T) {
	e := newKernelEnv(t, Options{})
	remote := e.pod(2, 1)
	e.w.set(makeService("default", "np", "10.96.0.40", []string{"80"}, nodePort(30080)), epOf(remote))
	e.sync(true)
	n1 := e.topo.Node(1)
	got, replies := e.probe(e.topo.Client, n1.IP+":30080", 3)
	if got[remote.Name] != 3 {
		t.Fatalf("NodePort from the client: %v", got)
	}
	for _, r := range replies {
		if r.SeenIP() != n1.IP && !strings.HasPrefix(r.SeenIP(), "10.244.1.") {
			t.Errorf("NodePort traffic not masqueraded: endpoint saw %s", r.SeenSrc)
		}
	}
	// Hairpin: a pod reaching itself through its Service.
	self := e.pod(1, 0)
	e.w.set(makeService("default", "self", "10.96.0.41", []string{"80"}), epOf(self))
	e.sync(false)
	got, replies = e.probe(self.Netns, "10.96.0.41:80", 2)
	if got[self.Name] != 2 {
		t.Fatalf("hairpin: %v", got)
	}
	if replies[0].SeenIP() == self.IP {
		t.Errorf("hairpin traffic not masqueraded: %s", replies[0].SeenSrc)
	}
}

func TestKernelNoEndpointsReject(t *testing.T) {
	e := newKernelEnv(t, Options{})
	e.w.set(makeService("default", "empty", "10.96.0.30", []string{"80"}))
	e.w.set(makeService("default", "web", "10.96.0.10", []string{"80"}), epOf(e.pod(2, 0)))
	e.sync(true)
	_, err := testrig.ProbeTCP(e.pod(1, 0).Netns, "10.96.0.30:80", 2*time.Second)
	if o := testrig.Classify(err); o != testrig.Refused {
		t.Errorf("Service without endpoints: %v (%v), want refused", o, err)
	}
	// Another port of a Service address is rejected too.
	_, err = testrig.ProbeTCP(e.pod(1, 0).Netns, "10.96.0.10:81", 2*time.Second)
	if o := testrig.Classify(err); o != testrig.Refused {
		t.Errorf("unknown port of a ClusterIP: %v (%v), want refused", o, err)
	}
	// Endpoints appear: it answers.
	e.w.set(makeService("default", "empty", "10.96.0.30", []string{"80"}), epOf(e.pod(2, 1)))
	e.sync(false)
	if r, err := testrig.ProbeTCP(e.pod(1, 0).Netns, "10.96.0.30:80", 2*time.Second); err != nil || r.Name != e.pod(2, 1).Name {
		t.Errorf("after endpoints appeared: %v %v", r, err)
	}
}

func TestKernelGracefulDrain(t *testing.T) {
	e := newKernelEnv(t, Options{DrainTimeout: 2 * time.Second})
	a, b := e.pod(2, 0), e.pod(2, 1)
	svc := makeService("default", "web", "10.96.0.10", []string{"80"})
	e.w.set(svc, epOf(a))
	e.sync(true)
	conn, err := testrig.DialInNetns(e.pod(1, 0).Netns, "tcp", "10.96.0.10:80", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 200)
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if n, err := conn.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), a.Name) {
		t.Fatalf("greeting: %q %v", buf[:n], err)
	}
	e.w.set(svc, epOf(b))
	e.sync(false)
	key := VSKey{"TCP", netip.MustParseAddr("10.96.0.10"), 80}
	dests, err := e.k.ListDests(context.Background(), key)
	if err != nil || dests[netip.MustParseAddrPort(a.IP+":8080")].Weight != 0 || dests[netip.MustParseAddrPort(b.IP+":8080")].Weight != 1 {
		t.Fatalf("removed endpoint not draining at weight 0: %v %v", dests, err)
	}
	// The established connection still works; new ones go to b only.
	conn.Write([]byte("ping\n"))
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "ping\n" {
		t.Errorf("established connection broken while draining: %q %v", buf[:n], err)
	}
	if got, _ := e.probe(e.pod(1, 0).Netns, "10.96.0.10:80", 4); got[b.Name] != 4 {
		t.Errorf("new connections during drain: %v", got)
	}
	e.sync(false) // connection still open: stays
	if d, _ := e.k.ListDests(context.Background(), key); len(d) != 2 {
		t.Errorf("draining real server removed while its connection is open (before the limit): %v", d)
	}
	conn.Close()
	time.Sleep(2100 * time.Millisecond)
	e.sync(false)
	if d, _ := e.k.ListDests(context.Background(), key); len(d) != 1 {
		t.Errorf("drained real server not deleted: %v", d)
	}
}

// A restarted proxy removes what it no longer wants (virtual servers and
// addresses), leaves foreign IPVS entries alone, and Cleanup removes all of
// kproxy's state.
func TestKernelStaleCleanup(t *testing.T) {
	ctx := context.Background()
	e := newKernelEnv(t, Options{})
	foreign := &VirtualServer{VSKey: VSKey{"TCP", netip.MustParseAddr(e.topo.Node(1).IP), 8000}, Scheduler: "wlc"}
	if err := e.k.AddVirtualServer(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	e.w.set(makeService("default", "keep", "10.96.0.10", []string{"80"}), epOf(e.pod(2, 0)))
	gone := makeService("default", "gone", "10.96.0.11", []string{"80"}, nodePort(30090))
	e.w.set(gone, epOf(e.pod(2, 1)))
	e.sync(true)
	e.w.remove(gone)
	e.p = e.newProxier() // a restart: nothing remembered
	e.sync(false)
	vss, _ := e.k.ListVirtualServers(ctx)
	addrs, _ := e.k.ListAddrs(ctx)
	if vss[VSKey{"TCP", netip.MustParseAddr("10.96.0.11"), 80}] != nil || vss[VSKey{"TCP", netip.MustParseAddr(e.topo.Node(1).IP), 30090}] != nil ||
		addrs[netip.MustParseAddr("10.96.0.11")] {
		t.Errorf("stale state survived a restart: %v %v", vss, addrs)
	}
	if vss[foreign.VSKey] == nil || vss[VSKey{"TCP", netip.MustParseAddr("10.96.0.10"), 80}] == nil {
		t.Errorf("foreign or wanted virtual server removed: %v", vss)
	}
	if _, err := testrig.ProbeTCP(e.pod(1, 0).Netns, "10.96.0.11:80", time.Second); testrig.Classify(err) == testrig.Answered {
		t.Error("removed Service still answers")
	}
	if err := e.p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	vss, _ = e.k.ListVirtualServers(ctx)
	if len(vss) != 1 || vss[foreign.VSKey] == nil {
		t.Errorf("after cleanup: %v", vss)
	}
	n1 := e.topo.Node(1).Netns
	for _, table := range []string{"nat", "filter"} {
		if out := testrig.Run(t, n1, "iptables-save", "-t", table); strings.Contains(out, "KUBE-") {
			t.Errorf("cleanup left %s rules:\n%s", table, out)
		}
	}
	if out, _ := testrig.Exec(n1, "ip", "link", "show", Interface); strings.Contains(out, Interface) {
		t.Errorf("cleanup left %s", Interface)
	}
	if out := testrig.Run(t, n1, "ipset", "list", "-n"); strings.Contains(out, "KUBE-") {
		t.Errorf("cleanup left sets: %s", out)
	}
}
