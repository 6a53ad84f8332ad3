package testrig

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const probeTimeout = 2 * time.Second

func TestTopologyPodToPodAcrossNodes(t *testing.T) {
	RequireRoot(t)
	CheckRootNetnsUnchanged(t)
	topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 2})

	for _, p := range topo.Pods() {
		StartEchoServers(t, p.Netns, p.Name, p.IP, []int{8080, 9090}, TCPUDP)
	}
	for _, src := range topo.Pods() {
		for _, dst := range topo.Pods() {
			for _, proto := range []Proto{TCP, UDP} {
				addr := net.JoinHostPort(dst.IP, "9090")
				r, err := Probe(src.Netns, proto, addr, probeTimeout)
				if err != nil {
					t.Errorf("%s -> %s %s: %v", src.Name, dst.Name, proto, err)
					continue
				}
				// Pod-to-pod is routed, never NATed: the server sees the pod's own address.
				if r.Name != dst.Name || r.SeenIP() != src.IP || r.SeenSrc != r.Local {
					t.Errorf("%s -> %s %s: got %+v, want server %s seeing %s", src.Name, dst.Name, proto, r, dst.Name, r.Local)
				}
			}
		}
	}
}

func TestTopologyLongLivedTCPEcho(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 1})
	dst := topo.Node(2).Pods[0]
	srv := StartEchoServers(t, dst.Netns, dst.Name, dst.IP, []int{8080}, TCP)

	conn, err := DialInNetns(topo.Node(1).Pods[0].Netns, "tcp4", dst.IP+":8080", probeTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	greet := make([]byte, 256)
	n, err := conn.Read(greet)
	if err != nil || !strings.HasPrefix(string(greet[:n]), dst.Name+" ") {
		t.Fatalf("greeting %q, %v", greet[:n], err)
	}
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("ping %d\n", i)
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
	}
	if srv.OpenConns() != 1 {
		t.Errorf("server has %d open connections, want 1", srv.OpenConns())
	}
}

func TestTopologyClientReachesNodes(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 1})
	for _, n := range topo.Nodes {
		StartEchoServers(t, n.Netns, n.Name, n.IP, []int{30080}, TCPUDP)
		for _, proto := range []Proto{TCP, UDP} {
			r, err := Probe(topo.Client, proto, n.IP+":30080", probeTimeout)
			if err != nil {
				t.Fatalf("client -> %s %s: %v", n.Name, proto, err)
			}
			if r.Name != n.Name || r.SeenIP() != ClientIP {
				t.Errorf("client -> %s %s: got %+v", n.Name, proto, r)
			}
		}
	}
	// The net namespace (control plane) reaches nodes and pods too.
	pod := topo.Node(2).Pods[0]
	StartEchoServers(t, pod.Netns, pod.Name, pod.IP, []int{80}, TCP)
	if r, err := ProbeTCP(topo.Net, pod.IP+":80", probeTimeout); err != nil || r.SeenIP() != BridgeIP {
		t.Errorf("net -> %s: %+v, %v", pod.Name, r, err)
	}
}

func TestProbeOutcomes(t *testing.T) {
	topo := NewTopology(t, TopologyOptions{Nodes: 1, PodsPerNode: 1})
	node, pod := topo.Node(1), topo.Node(1).Pods[0]

	// Nothing listens: a TCP RST and an ICMP port-unreachable from the pod.
	_, err := ProbeTCP(topo.Client, node.IP+":1", probeTimeout)
	if o := Classify(err); o != Refused {
		t.Errorf("tcp to closed port: %v (%v), want refused", o, err)
	} else if pe := err.(*ProbeError); pe.ICMP != nil {
		t.Errorf("tcp to closed port: a RST, not ICMP, was expected: %v", pe.ICMP)
	}
	_, err = ProbeUDP(node.Netns, pod.IP+":1", probeTimeout)
	if o := Classify(err); o != Refused {
		t.Errorf("udp to closed port: %v (%v), want refused", o, err)
	} else if pe := err.(*ProbeError); pe.ICMP == nil || !pe.ICMP.PortUnreachable() || pe.ICMP.From != pod.IP {
		t.Errorf("udp to closed port: want ICMP port unreachable from %s, got %v", pod.IP, pe.ICMP)
	}

	// An iptables REJECT inside the node (never the root netns).
	if _, err := ExecInput(node.Netns, "*filter\n-A FORWARD -p tcp --dport 7 -j REJECT\n-A FORWARD -p tcp --dport 8 -j REJECT --reject-with icmp-host-prohibited\n-A FORWARD -p tcp --dport 9 -j DROP\nCOMMIT\n", "iptables-restore", "--noflush"); err != nil {
		t.Fatal(err)
	}
	if err := topo.AddClientRoute(node.PodCIDR.String(), 1); err != nil {
		t.Fatal(err)
	}
	_, err = ProbeTCP(topo.Client, pod.IP+":7", probeTimeout)
	if pe, ok := err.(*ProbeError); !ok || pe.Outcome != Refused || pe.ICMP == nil || !pe.ICMP.PortUnreachable() {
		t.Errorf("tcp REJECT: want refused with ICMP port unreachable, got %v", err)
	}
	_, err = ProbeTCP(topo.Client, pod.IP+":8", probeTimeout)
	if pe, ok := err.(*ProbeError); !ok || pe.Outcome != Unreachable || pe.ICMP == nil || pe.ICMP.Code != 10 {
		t.Errorf("tcp REJECT host-prohibited: want unreachable with ICMP code 10, got %v", err)
	}
	start := time.Now()
	_, err = ProbeTCP(topo.Client, pod.IP+":9", 500*time.Millisecond)
	if o := Classify(err); o != Timeout {
		t.Errorf("tcp DROP: %v (%v), want timeout", o, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("tcp DROP probe took %v", d)
	}
	// Unknown destinations die in the node's sink: a timeout, not an error.
	if err := topo.AddClientRoute("203.0.113.0/24", 1); err != nil {
		t.Fatal(err)
	}
	if o := Classify(probeUDPErr(topo.Client, "203.0.113.5:53")); o != Timeout {
		t.Errorf("udp into the sink: %v, want timeout", o)
	}
	// No route at all in the client: unreachable at once.
	if o := Classify(probeUDPErr(topo.Client, "192.0.2.99:53")); o != Unreachable {
		t.Errorf("udp without route: %v, want unreachable", o)
	}
}

func probeUDPErr(ns, addr string) error {
	_, err := ProbeUDP(ns, addr, 500*time.Millisecond)
	return err
}
