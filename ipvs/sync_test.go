package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

func newFakeProxier(t *testing.T, k *Fake, now *time.Time) *Proxier {
	t.Helper()
	p, err := New(Options{Kernel: k, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.0.0/16")),
		DrainTimeout: time.Minute, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func syncOnce(t *testing.T, p *Proxier, c proxier.Checkout, full bool) proxier.SyncResult {
	t.Helper()
	res, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: c.Snapshots[proxier.IPv4], Changed: c.Changed[proxier.IPv4], Full: full})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var weightZero = regexp.MustCompile(`(?m)^  -> .* weight 0\n`)

// The kernel after a sync holds exactly what Build says (plus the jumps).
func TestSyncProgramsDesiredState(t *testing.T) {
	now := time.Unix(1000, 0)
	k := nodeFake()
	p := newFakeProxier(t, k, &now)
	c := scenario().checkout()
	syncOnce(t, p, c, true)
	dump := k.Dump()
	want := Build(c.Snapshots[proxier.IPv4], &p.opts)
	for _, part := range []string{"TCP 10.96.0.10:80 rr\n  -> 10.244.1.10:8080 masq weight 1\n  -> 10.244.2.10:8080 masq weight 1\n",
		"KUBE-NO-ENDPOINTS (1)\n  10.96.0.30,tcp:80\n",
		`-A PREROUTING -m comment --comment "kproxy ipvs" -j KUBE-SERVICES`,
		`-A INPUT -m comment --comment "kproxy ipvs" -j KUBE-IPVS-FILTER`} {
		if !strings.Contains(dump, part) {
			t.Errorf("kernel lacks %q:\n%s", part, dump)
		}
	}
	if len(want.VirtualServers) != strings.Count(strings.Split(dump, "# addresses")[0], " rr") {
		t.Errorf("virtual server count differs from Build's %d", len(want.VirtualServers))
	}
	if k.Sysctls["net/ipv4/vs/conntrack"] != "1" || k.Sysctls["net/ipv4/vs/expire_nodest_conn"] != "1" {
		t.Errorf("sysctls not set: %v", k.Sysctls)
	}
	// A second full sync with nothing changed writes nothing but the
	// (idempotent) iptables restore.
	before := fmt.Sprint(k.Ops)
	res := syncOnce(t, p, scenario().checkout(), true)
	if got := fmt.Sprint(k.Ops); got != fmt.Sprint(map[string]int{"AddDest": k.Ops["AddDest"], "AddAddr": k.Ops["AddAddr"],
		"AddEntries": k.Ops["AddEntries"], "AddVirtualServer": k.Ops["AddVirtualServer"], "CreateSet": k.Ops["CreateSet"],
		"EnsureInterface": 1, "Restore": k.Ops["Restore"]}) || res.Written["ipvs"] != 0 || res.Written["ipset"] != 0 {
		t.Errorf("no-op full sync wrote: before %s after %s, written %v", before, got, res.Written)
	}
	if strings.Count(k.Dump(), `"kproxy ipvs"`) != len(jumps) {
		t.Errorf("jump rules duplicated:\n%s", k.Dump())
	}
}

// Incremental syncs reach the same kernel state as a full sync from scratch.
func TestIncrementalEqualsFull(t *testing.T) {
	now := time.Unix(1000, 0)
	w := scenario()
	k := nodeFake()
	p := newFakeProxier(t, k, &now)
	syncOnce(t, p, w.checkout(), true)
	web := makeService("default", "web", "10.96.0.10", []string{"80", "443"})
	steps := []struct {
		name string
		do   func()
	}{
		{"scale up", func() { w.set(web, "10.244.1.10@node1", "10.244.2.10@node2", "10.244.2.20@node2") }},
		{"scale down", func() { w.set(web, "10.244.2.20@node2") }},
		{"add affinity", func() {
			w.set(makeService("default", "web", "10.96.0.10", []string{"80", "443"}, affinity(30)), "10.244.2.20@node2")
		}},
		{"drop a port", func() { w.set(makeService("default", "web", "10.96.0.10", []string{"80"}), "10.244.2.20@node2") }},
		{"endpoints gone", func() { w.set(makeService("default", "sticky", "10.96.0.20", []string{"80"}, affinity(60))) }},
		{"new NodePort service", func() {
			w.set(makeService("ns2", "new", "10.96.1.1", []string{"8080", "9090/UDP"}, nodePort(31000, 31001)), "10.244.1.30@node1")
		}},
		{"delete services", func() {
			w.remove(makeService("default", "lb", "10.96.0.50", []string{"80"}))
			w.remove(makeService("default", "empty", "10.96.0.30", []string{"80"}))
		}},
		{"ETP Local to Cluster", func() {
			w.set(makeService("default", "np-local", "10.96.0.41", []string{"80"}, nodePort(30081)), "10.244.2.12@node2")
		}},
		{"two Services share an externalIP:port", func() {
			w.set(makeService("ns2", "ext-a", "10.96.1.2", []string{"80"}, externalIPs("203.0.113.50")), "10.244.2.30@node2")
			w.set(makeService("ns2", "ext-b", "10.96.1.3", []string{"80"}, externalIPs("203.0.113.50")), "10.244.2.31@node2")
		}},
		{"one of them goes away", func() {
			w.remove(makeService("ns2", "ext-a", "10.96.1.2", []string{"80"}))
		}},
		{"the node gets another address", func() {
			k.NodeAddrs = append(k.NodeAddrs, netip.MustParseAddr("192.0.2.7"))
			w.set(makeService("ns2", "new", "10.96.1.1", []string{"8080"}, nodePort(31000)), "10.244.1.30@node1")
		}},
		{"ETP Local loses its local endpoint", func() {
			w.set(makeService("default", "lb", "10.96.0.50", []string{"80"}, nodePort(30082),
				loadBalancer("203.0.113.5", "192.0.2.0/24"), etpLocal(32000)), "10.244.2.12@node2")
		}},
	}
	for _, s := range steps {
		s.do()
		c := w.checkout()
		syncOnce(t, p, c, false)
		if got, want := p.want.s.Dump(), newDesired(c.Snapshots[proxier.IPv4], &p.opts, p.want.nodePortAddrs).s.Dump(); got != want {
			t.Fatalf("after %q the incrementally kept desired state differs from a rebuild:\n%s\n---\n%s", s.name, got, want)
		}
		fresh := nodeFake()
		fresh.NodeAddrs = k.NodeAddrs
		syncOnce(t, newFakeProxier(t, fresh, &now), c, true)
		// Removed TCP real servers drain at weight 0 in the incremental
		// kernel; everything else must be identical.
		if got, want := weightZero.ReplaceAllString(k.Dump(), ""), fresh.Dump(); got != want {
			t.Fatalf("after %q incremental != full:\n--- incremental\n%s\n--- full\n%s", s.name, got, want)
		}
	}
}

// Stale virtual servers and addresses of kproxy go away; foreign ones and
// those in ExcludeCIDRs stay.
func TestStaleCleanupSparesForeignEntries(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	k := nodeFake()
	k.EnsureInterface(ctx)
	foreign := &VirtualServer{VSKey: VSKey{"TCP", netip.MustParseAddr("192.0.2.50"), 80}, Scheduler: "wlc"}
	stale := &VirtualServer{VSKey: VSKey{"TCP", netip.MustParseAddr("10.96.9.9"), 80}, Scheduler: "rr"}
	staleNP := &VirtualServer{VSKey: VSKey{"UDP", netip.MustParseAddr("198.51.100.11"), 31999}, Scheduler: "rr"}
	excluded := &VirtualServer{VSKey: VSKey{"TCP", netip.MustParseAddr("10.200.0.1"), 80}, Scheduler: "rr"}
	for _, v := range []*VirtualServer{foreign, stale, staleNP, excluded} {
		if err := k.AddVirtualServer(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	k.AddDest(ctx, foreign.VSKey, netip.MustParseAddrPort("192.0.2.51:80"), 3)
	for _, a := range []string{"10.96.9.9", "10.200.0.1"} {
		k.AddAddr(ctx, netip.MustParseAddr(a))
	}
	p, err := New(Options{Kernel: k, ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.200.0.0/16")}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := scenario().checkout()
	syncOnce(t, p, c, true)
	d := k.Dump()
	for _, gone := range []string{"TCP 10.96.9.9:80", "UDP 198.51.100.11:31999", "\n10.96.9.9\n"} {
		if strings.Contains(d, gone) {
			t.Errorf("stale %q survived:\n%s", gone, d)
		}
	}
	for _, kept := range []string{"TCP 192.0.2.50:80 wlc\n  -> 192.0.2.51:80 masq weight 3", "TCP 10.200.0.1:80", "\n10.200.0.1\n"} {
		if !strings.Contains(d, kept) {
			t.Errorf("%q was removed:\n%s", kept, d)
		}
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	d = k.Dump()
	if !strings.Contains(d, "TCP 192.0.2.50:80 wlc") || strings.Contains(d, "10.96.0.10") || testrig.MentionsOwnChain(d) || k.HasInterface() {
		t.Errorf("cleanup left kproxy state or removed foreign state:\n%s", d)
	}
	if err := p.Cleanup(ctx); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

// A failed kernel write returns an error; the next (full) sync converges.
func TestFailureThenFullSyncConverges(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, failOp := range []string{"AddDest TCP 10.96.0.20:80", "Restore", "AddEntries KUBE-LOOP-BACK", "AddAddr 10.96.0.50", "ListVirtualServers"} {
		t.Run(failOp, func(t *testing.T) {
			k := nodeFake()
			p := newFakeProxier(t, k, &now)
			injected := errors.New("injected")
			k.FailOn = func(op string) error {
				if strings.HasPrefix(op, failOp) {
					return injected
				}
				return nil
			}
			c := scenario().checkout()
			_, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: c.Snapshots[proxier.IPv4], Full: true})
			if !errors.Is(err, injected) {
				t.Fatalf("sync error = %v, want the injected one", err)
			}
			k.FailOn = nil
			// Even a request for a partial sync must re-read the kernel now.
			res := syncOnce(t, p, c, false)
			if !res.Full {
				t.Error("sync after a failure was not full")
			}
			fresh := nodeFake()
			syncOnce(t, newFakeProxier(t, fresh, &now), c, true)
			if k.Dump() != fresh.Dump() {
				t.Errorf("did not converge:\n%s\n---\n%s", k.Dump(), fresh.Dump())
			}
		})
	}
}

// A removed TCP real server keeps weight 0 while it has connections, and
// is deleted when they are gone or after DrainTimeout; UDP ones go at once.
func TestGracefulDrain(t *testing.T) {
	now := time.Unix(1000, 0)
	k := nodeFake()
	p := newFakeProxier(t, k, &now)
	w := newWorld(makeNode("node1", "198.51.100.11"))
	svc := makeService("default", "web", "10.96.0.10", []string{"80", "53/UDP"})
	w.set(svc, "10.244.1.10@node1", "10.244.2.10@node2")
	syncOnce(t, p, w.checkout(), true)
	tcp := VSKey{"TCP", netip.MustParseAddr("10.96.0.10"), 80}
	gone := netip.MustParseAddrPort("10.244.2.10:8080")
	k.SetConns(tcp, gone, 1, 0)

	w.set(svc, "10.244.1.10@node1")
	syncOnce(t, p, w.checkout(), false)
	d := k.Dump()
	if !strings.Contains(d, "-> 10.244.2.10:8080 masq weight 0") || strings.Contains(d, "10.244.2.10:8053") {
		t.Fatalf("TCP real server not draining or UDP one not deleted:\n%s", d)
	}
	now = now.Add(10 * time.Second)
	syncOnce(t, p, w.checkout(), false)
	if !strings.Contains(k.Dump(), "10.244.2.10:8080 masq weight 0") {
		t.Fatal("draining real server with an active connection was deleted")
	}
	// The endpoint comes back while draining: weight restored.
	w.set(svc, "10.244.1.10@node1", "10.244.2.10@node2")
	syncOnce(t, p, w.checkout(), false)
	if !strings.Contains(k.Dump(), "10.244.2.10:8080 masq weight 1") {
		t.Fatalf("returning endpoint not restored:\n%s", k.Dump())
	}
	w.set(svc, "10.244.1.10@node1")
	syncOnce(t, p, w.checkout(), false)
	k.SetConns(tcp, gone, 0, 0)
	syncOnce(t, p, w.checkout(), false)
	if strings.Contains(k.Dump(), "10.244.2.10:8080") {
		t.Fatal("idle draining real server not deleted")
	}
	// Timeout: connections never close.
	w.set(svc, "10.244.1.10@node1", "10.244.2.10@node2")
	syncOnce(t, p, w.checkout(), false)
	k.SetConns(tcp, gone, 5, 5)
	w.set(svc, "10.244.1.10@node1")
	syncOnce(t, p, w.checkout(), false)
	now = now.Add(2 * time.Minute)
	syncOnce(t, p, w.checkout(), false)
	if strings.Contains(k.Dump(), "10.244.2.10:8080") {
		t.Fatal("draining real server outlived DrainTimeout")
	}
}

// One changed Service among many costs a handful of kernel operations.
func TestPartialSyncWritesOnlyTheChange(t *testing.T) {
	now := time.Unix(1000, 0)
	k := nodeFake()
	p := newFakeProxier(t, k, &now)
	w := newWorld(makeNode("node1", "198.51.100.11"))
	for i := range 1000 {
		w.set(makeService("bench", fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), []string{"80"}),
			ep(fmt.Sprintf("10.244.%d.%d@node2", i/250, i%250+1)), ep(fmt.Sprintf("10.245.%d.%d@node3", i/250, i%250+1)))
	}
	res := syncOnce(t, p, w.checkout(), true)
	if res.Rules["ipvs"] != 1000 || res.Rules["ipvs-real-servers"] != 2000 {
		t.Fatalf("rules = %v", res.Rules)
	}
	w.set(makeService("bench", "s7", "10.96.0.8", []string{"80"}), "10.244.0.8@node2", "10.244.9.9@node2")
	before := p.want
	res = syncOnce(t, p, w.checkout(), false)
	if p.want != before || len(p.want.contrib) != 1000 {
		t.Errorf("partial sync rebuilt the desired state instead of updating one Service")
	}
	total := 0
	for _, n := range res.Written {
		total += n
	}
	// add the real server, drain the old one (weight 0): 2 objects (the
	// endpoints are on other nodes, so no loop-back entry), and no
	// iptables restore.
	if total != 2 || res.Written["iptables"] != 0 {
		t.Errorf("partial sync wrote %v", res.Written)
	}
}

func TestFakeBehavesLikeKernel(t *testing.T) {
	ctx := context.Background()
	k := nodeFake()
	v := &VirtualServer{VSKey: VSKey{"TCP", netip.MustParseAddr("10.96.0.1"), 80}, Scheduler: "rr"}
	if err := k.AddVirtualServer(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := k.AddVirtualServer(ctx, v); !IsExist(err) {
		t.Errorf("duplicate virtual server: %v", err)
	}
	if err := k.AddDest(ctx, VSKey{"UDP", v.Addr, 80}, netip.MustParseAddrPort("10.0.0.1:80"), 1); !IsNotExist(err) {
		t.Errorf("real server of a missing virtual server: %v", err)
	}
	if err := k.Restore(ctx, []byte("*nat\n:KUBE-X - [0:0]\n-A KUBE-X -m set --match-set NOPE dst -j RETURN\nCOMMIT\n"), false); err == nil {
		t.Error("restore referencing a missing set succeeded")
	}
	if s, _ := k.Save(ctx, "nat"); strings.Contains(string(s), "KUBE-X") {
		t.Error("failed restore left a chain behind")
	}
	k.CreateSet(ctx, "S", "hash:ip")
	if err := k.Restore(ctx, []byte("*filter\n:KUBE-Y - [0:0]\n-A KUBE-Y -m set --match-set S dst -j DROP\nCOMMIT\n"), false); err != nil {
		t.Fatal(err)
	}
	if err := k.DestroySet(ctx, "S"); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("destroying a set in use: %v", err)
	}
	if err := k.AddEntries(ctx, "S", "hash:ip", []string{"10.0.0.1,tcp:80"}); err == nil {
		t.Error("entry of the wrong type accepted")
	}
}

// With empty --nodeport-addresses NodePorts answer on every local address
// but kube-ipvs0's (the kernel's list), not only the Node object's; a
// filter picks among them.
func TestNodePortAddresses(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newWorld(makeNode("node1", "198.51.100.11"))
	w.set(makeService("default", "np", "10.96.0.40", []string{"80"}, nodePort(30080)), "10.244.2.12@node2")
	c := w.checkout()
	for _, tc := range []struct {
		filter []string
		want   []string
	}{
		{nil, []string{"192.0.2.7", "198.51.100.11"}},
		{[]string{"192.0.2.0/24"}, []string{"192.0.2.7"}},
		{[]string{"primary"}, []string{"198.51.100.11"}},
	} {
		k := nodeFake()
		k.NodeAddrs = append(k.NodeAddrs, netip.MustParseAddr("192.0.2.7"))
		p, err := New(Options{Kernel: k, NodePortAddresses: tc.filter, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		syncOnce(t, p, c, true)
		vss, _ := k.ListVirtualServers(context.Background())
		var got []string
		for key := range vss {
			if key.Port == 30080 {
				got = append(got, key.Addr.String())
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("--nodeport-addresses=%v: NodePort on %v, want %v", tc.filter, got, tc.want)
		}
	}
}
