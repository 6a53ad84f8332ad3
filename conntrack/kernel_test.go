package conntrack

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// Kernel tests: a testrig topology (one node, two pods A and B, a client
// outside), a hand-written DNAT ruleset restored inside the node namespace,
// real UDP "sessions" (one socket, one source port) from the client, and a
// Cleaner working on the node namespace's conntrack table.

const (
	svcIP    = "10.96.0.10"
	svcAddr  = svcIP + ":53"
	nodePort = 30053
)

type rig struct {
	topo   *testrig.Topology
	node   *testrig.Node
	a, b   *testrig.Pod
	ns     netns.NsHandle
	clean  *Cleaner
	client string
}

func newRig(t *testing.T) *rig {
	testrig.RequireRoot(t) // before anything that needs root
	testrig.CheckRootNetnsUnchanged(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 2})
	r := &rig{topo: topo, node: topo.Node(1), client: topo.Client}
	r.a, r.b = r.node.Pods[0], r.node.Pods[1]
	if err := topo.AddClientRoute(testrig.ServiceCIDR, 1); err != nil {
		t.Fatal(err)
	}
	testrig.StartEchoServers(t, r.a.Netns, "A", r.a.IP, []int{53}, testrig.TCPUDP)
	testrig.StartEchoServers(t, r.b.Netns, "B", r.b.IP, []int{53}, testrig.TCPUDP)
	h, err := netns.GetFromName(r.node.Netns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r.ns = h
	r.clean, err = New(Options{Family: proxier.IPv4, Netns: &r.ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.clean.Close() })
	return r
}

// program replaces the node's nat table: the ClusterIP (UDP and TCP 53)
// and the UDP NodePort go to pod to; to nil programs no service rule.
// The masquerade rule is kube-proxy's KUBE-POSTROUTING one; it also keeps
// conntrack running in the namespace when there is no DNAT rule (with
// iptables-nft, an empty nat table does not enable conntrack).
func (r *rig) program(t *testing.T, to *testrig.Pod) {
	t.Helper()
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	b.WriteString(":KPT-SERVICES - [0:0]\n-A PREROUTING -j KPT-SERVICES\n-A OUTPUT -j KPT-SERVICES\n")
	b.WriteString("-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n")
	if to != nil {
		fmt.Fprintf(&b, "-A KPT-SERVICES -d %s/32 -p udp --dport 53 -j DNAT --to-destination %s:53\n", svcIP, to.IP)
		fmt.Fprintf(&b, "-A KPT-SERVICES -d %s/32 -p tcp --dport 53 -j DNAT --to-destination %s:53\n", svcIP, to.IP)
		fmt.Fprintf(&b, "-A KPT-SERVICES -p udp --dport %d -m addrtype --dst-type LOCAL -j DNAT --to-destination %s:53\n", nodePort, to.IP)
	}
	b.WriteString("COMMIT\n")
	if _, err := testrig.ExecInput(r.node.Netns, b.String(), "iptables-restore"); err != nil {
		t.Fatal(err)
	}
}

// snapshotTo is the snapshot of the DNS Service (NodePort 30053, UDP and
// TCP 53) whose only endpoints are pods (none: no endpoint).
func (r *rig) snapshotTo(t *testing.T, pods ...*testrig.Pod) *proxier.Snapshot {
	ports := []svcPort{{name: "dns", port: 53, proto: v1.ProtocolUDP, nodePort: nodePort}, {name: "dns-tcp", port: 53, proto: v1.ProtocolTCP, nodePort: nodePort}}
	var eps []ep
	for _, p := range pods {
		eps = append(eps, ready(p.IP))
	}
	return snapshot(t, service("dns", svcIP, v1.ServiceTypeNodePort, ports...), slice("dns", "dns-1", ports, eps...))
}

// session is one client UDP socket: every datagram has the same source
// port, so they all share one conntrack entry.
type session struct {
	t    *testing.T
	conn net.Conn
}

func (r *rig) session(t *testing.T, addr string) *session {
	t.Helper()
	c, err := testrig.DialInNetns(r.client, "udp4", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &session{t: t, conn: c}
}

// ask sends a datagram and returns the name of the echo server that
// answered, or "" if none did within wait.
func (s *session) ask(wait time.Duration) string {
	s.t.Helper()
	if _, err := s.conn.Write([]byte("ping\n")); err != nil {
		s.t.Fatalf("send: %v", err)
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := s.conn.Read(buf)
	if err != nil {
		if testrig.Classify(err) == testrig.Timeout {
			return ""
		}
		s.t.Fatalf("receive: %v", err)
	}
	name, _, _ := strings.Cut(string(buf[:n]), " ")
	return name
}

// answerWait bounds a reply inside one machine; a silent flow costs it.
const answerWait = 2 * time.Second

// silentWait is how long "no answer" is waited for.
const silentWait = 500 * time.Millisecond

// flowsTo returns the node's conntrack entries of proto whose original
// destination is dst.
func (r *rig) flowsTo(t *testing.T, proto uint8, dst string) []*netlink.ConntrackFlow {
	t.Helper()
	h, err := netlink.NewHandleAt(r.ns, unix.NETLINK_NETFILTER)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort(dst)
	var out []*netlink.ConntrackFlow
	for _, f := range flows {
		if d, ok := addrPort(f.Forward.DstIP, f.Forward.DstPort); ok && d == want && f.Forward.Protocol == proto {
			out = append(out, f)
		}
	}
	return out
}

func (r *rig) cleanup(t *testing.T, snap *proxier.Snapshot) int {
	t.Helper()
	return r.cleanupWith(t, r.clean, snap)
}

// cleanupWith runs one clean-up of c.
func (r *rig) cleanupWith(t *testing.T, c *Cleaner, snap *proxier.Snapshot) int {
	t.Helper()
	n, err := c.CleanStaleFlows(context.Background(), snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An endpoint goes away: the UDP session sticks to it until the cleaner
// deletes its entry, then moves to the live endpoint. A TCP connection to
// the same ClusterIP is left alone.
func TestKernelUDPFlowMovesWhenEndpointRemoved(t *testing.T) {
	r := newRig(t)
	r.program(t, r.a)
	udp := r.session(t, svcAddr)
	if got := udp.ask(answerWait); got != "A" {
		t.Fatalf("before the change: answered by %q, want A", got)
	}
	tcp, err := testrig.DialInNetns(r.client, "tcp4", svcAddr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	greet := make([]byte, 256)
	tcp.SetReadDeadline(time.Now().Add(answerWait))
	if n, err := tcp.Read(greet); err != nil || !strings.HasPrefix(string(greet[:n]), "A ") {
		t.Fatalf("tcp greeting %q, %v; want from A", greet[:n], err)
	}

	// A is removed: the rules now point to B, but the entry still says A.
	r.program(t, r.b)
	if got := udp.ask(answerWait); got != "A" {
		t.Fatalf("rules moved, no cleanup: answered by %q, want still A (the stale entry)", got)
	}
	if n := len(r.flowsTo(t, protoUDP, svcAddr)); n != 1 {
		t.Fatalf("%d UDP entries to %s, want 1", n, svcAddr)
	}

	if n := r.cleanup(t, r.snapshotTo(t, r.b)); n != 1 {
		t.Errorf("deleted %d entries, want 1 (the UDP one)", n)
	}
	if got := udp.ask(answerWait); got != "B" {
		t.Errorf("after cleanup: answered by %q, want B", got)
	}

	// The TCP connection still goes to A over its untouched entry.
	if n := len(r.flowsTo(t, protoTCP, svcAddr)); n != 1 {
		t.Errorf("%d TCP entries to %s, want 1", n, svcAddr)
	}
	tcp.SetDeadline(time.Now().Add(answerWait))
	if _, err := tcp.Write([]byte("still-a\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := tcp.Read(greet); err != nil || string(greet[:n]) != "still-a\n" {
		t.Errorf("tcp echo after cleanup: %q, %v; want the connection to A still working", greet[:n], err)
	}

	// Once clean, another run deletes nothing.
	if n := r.cleanup(t, r.snapshotTo(t, r.b)); n != 0 {
		t.Errorf("second cleanup deleted %d, want 0", n)
	}
}

// A Service gets its first endpoint: datagrams sent before its DNAT rule
// existed left an entry that bypasses the rule; the cleaner deletes it.
func TestKernelUDPFlowReachesFirstEndpoint(t *testing.T) {
	r := newRig(t)
	r.program(t, nil)
	udp := r.session(t, svcAddr)
	if got := udp.ask(silentWait); got != "" {
		t.Fatalf("no rules: answered by %q, want silence (the sink)", got)
	}
	if n := len(r.flowsTo(t, protoUDP, svcAddr)); n != 1 {
		t.Fatalf("%d UDP entries to %s, want 1 (not DNATed)", n, svcAddr)
	}
	// Nothing to clean while the Service has no endpoint and no rule.
	r.program(t, r.a)
	if got := udp.ask(silentWait); got != "" {
		t.Fatalf("rule added, no cleanup: answered by %q, want silence (the stale entry)", got)
	}
	if n := r.cleanup(t, r.snapshotTo(t, r.a)); n != 1 {
		t.Errorf("deleted %d entries, want 1", n)
	}
	if got := udp.ask(answerWait); got != "A" {
		t.Errorf("after cleanup: answered by %q, want A", got)
	}
}

// The same through the node's NodePort.
func TestKernelUDPNodePortFlowMoves(t *testing.T) {
	r := newRig(t)
	r.program(t, r.a)
	addr := fmt.Sprintf("%s:%d", r.node.IP, nodePort)
	udp := r.session(t, addr)
	if got := udp.ask(answerWait); got != "A" {
		t.Fatalf("before the change: answered by %q, want A", got)
	}
	r.program(t, r.b)
	if got := udp.ask(answerWait); got != "A" {
		t.Fatalf("rules moved, no cleanup: answered by %q, want still A", got)
	}
	// A snapshot that still lists A keeps the flow.
	if n := r.cleanup(t, r.snapshotTo(t, r.a, r.b)); n != 0 {
		t.Errorf("with A still serving: deleted %d, want 0", n)
	}
	if n := r.cleanup(t, r.snapshotTo(t, r.b)); n != 1 {
		t.Errorf("deleted %d entries, want 1", n)
	}
	if got := udp.ask(answerWait); got != "B" {
		t.Errorf("after cleanup: answered by %q, want B", got)
	}
}
