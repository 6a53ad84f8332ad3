package testrig

import (
	"net"
	"testing"
)

func TestIPv6AddressPlan(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.11":  "fd00:198:51:100::11",
		"198.51.100.100": "fd00:198:51:100::100",
		"10.244.2.12":    "fd00:10:244:2::12",
		"10.96.201.10":   "fd00:10:96::201:10",
		"203.0.113.7":    "2001:db8:ffff::cb00:7107",
		"fd00::1":        "",
		"bogus":          "",
	} {
		if got := IPv6(in); got != want {
			t.Errorf("IPv6(%q) = %q, want %q", in, got, want)
		}
	}
	if NodeIPv6(1) != IPv6(NodeIP(1)) || ClientIPv6 != IPv6(ClientIP) || BridgeIPv6 != IPv6(BridgeIP) {
		t.Errorf("node, client or bridge IPv6 address does not mirror its IPv4 address")
	}
}

// TestTopologyIPv6 checks the dual-stack topology with real packets: pod to
// pod across nodes, client to node and the net namespace to a pod over IPv6,
// IPv4 still working, and an ICMPv6 port unreachable classified as refused.
func TestTopologyIPv6(t *testing.T) {
	RequireRoot(t)
	CheckRootNetnsUnchanged(t)
	topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 1, IPv6: true})
	src, dst := topo.Node(1).Pods[0], topo.Node(2).Pods[0]
	StartEchoServers(t, dst.Netns, dst.Name, dst.IPv6, []int{8080}, TCPUDP)
	StartEchoServers(t, dst.Netns, dst.Name+"-v4", dst.IP, []int{8080}, TCP)
	for _, proto := range []Proto{TCP, UDP} {
		r, err := Probe(src.Netns, proto, net.JoinHostPort(dst.IPv6, "8080"), probeTimeout)
		if err != nil || r.Name != dst.Name || r.SeenIP() != src.IPv6 || r.SeenSrc != r.Local {
			t.Errorf("%s -> %s %s over IPv6: %+v, %v; want %s seeing %s unchanged", src.Name, dst.Name, proto, r, err, dst.Name, src.IPv6)
		}
	}
	if r, err := ProbeTCP(src.Netns, net.JoinHostPort(dst.IP, "8080"), probeTimeout); err != nil || r.Name != dst.Name+"-v4" {
		t.Errorf("IPv4 next to IPv6: %+v, %v", r, err)
	}

	n := topo.Node(1)
	StartEchoServers(t, n.Netns, n.Name, n.IPv6, []int{30080}, UDP)
	if r, err := ProbeUDP(topo.Client, net.JoinHostPort(n.IPv6, "30080"), probeTimeout); err != nil || r.SeenIP() != ClientIPv6 {
		t.Errorf("client -> %s over IPv6: %+v, %v", n.Name, r, err)
	}
	if r, err := ProbeUDP(topo.Net, net.JoinHostPort(dst.IPv6, "8080"), probeTimeout); err != nil || r.SeenIP() != BridgeIPv6 {
		t.Errorf("net -> %s over IPv6: %+v, %v", dst.Name, r, err)
	}

	_, err := ProbeUDP(n.Netns, net.JoinHostPort(dst.IPv6, "1"), probeTimeout)
	pe, _ := err.(*ProbeError)
	if Classify(err) != Refused || pe == nil || pe.ICMP == nil || !pe.ICMP.PortUnreachable() || pe.ICMP.From != dst.IPv6 {
		t.Errorf("udp to a closed IPv6 port: %v, want refused by an ICMPv6 port unreachable from %s", err, dst.IPv6)
	}
}

func TestIPv6View(t *testing.T) {
	topo := &Topology{IPv6: true, Nodes: []*Node{{Index: 1, IP: NodeIP(1), Gateway: "10.244.1.1"}}}
	topo.Nodes[0].Pods = []*Pod{{Node: topo.Nodes[0], IP: "10.244.1.10"}}
	topo.planIPv6()
	v := topo.IPv6View()
	n, p := v.Node(1), v.Pods()[0]
	if n.IP != "fd00:198:51:100::11" || n.Gateway != "fd00:10:244:1::1" || n.PodCIDR.String() != "fd00:10:244:1::/64" || p.IP != "fd00:10:244:1::10" || p.Node != n {
		t.Errorf("view: node %+v, pod %+v", n, p)
	}
	if topo.Node(1).IP != NodeIP(1) || topo.Pods()[0].IP != "10.244.1.10" {
		t.Errorf("the view changed the topology")
	}
}
