package conntrack

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

var ap = netip.MustParseAddrPort

var (
	client     = ap("198.51.100.100:40000")
	nodeLocal  = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("10.244.1.1"), netip.MustParseAddr("fd00::11")}
	dnsPorts   = []svcPort{{name: "dns", port: 53, proto: v1.ProtocolUDP, nodePort: 30053}, {name: "dns-tcp", port: 53, proto: v1.ProtocolTCP, nodePort: 30053}}
	sctpPorts  = []svcPort{{name: "sctp", port: 9, proto: v1.ProtocolSCTP}}
	emptyPorts = []svcPort{{name: "", port: 53, proto: v1.ProtocolUDP}}
)

// testSnapshot: a LoadBalancer DNS Service (UDP and TCP 53, NodePort
// 30053, an externalIP and an LB IP) whose slice has a ready endpoint, a
// serving terminating one and a terminated one; a UDP Service with no
// endpoints; an SCTP Service.
func testSnapshot(t *testing.T) *proxier.Snapshot {
	dns := service("dns", "10.96.0.10", v1.ServiceTypeLoadBalancer, dnsPorts...)
	dns.Spec.ExternalIPs = []string{"192.0.2.5"}
	dns.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.20"}}
	return snapshot(t,
		dns,
		slice("dns", "dns-1", dnsPorts,
			ready("10.244.1.10"),
			ep{ip: "10.244.1.11", serving: true, terminating: true},
			ep{ip: "10.244.1.12", terminating: true},
		),
		service("empty", "10.96.0.20", "", emptyPorts...),
		service("sctp", "10.96.0.30", "", sctpPorts...),
		slice("sctp", "sctp-1", sctpPorts, ready("10.244.1.30")),
	)
}

// TestStaleFlows is the packet-flow table of the cleaner: which conntrack
// entries one clean-up deletes.
func TestStaleFlows(t *testing.T) {
	v6client := ap("[fd00::100]:40000")
	cases := []struct {
		name   string
		flow   *netlink.ConntrackFlow
		delete bool
	}{
		{"udp clusterIP to ready endpoint", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.1.10:53")), false},
		{"udp clusterIP to serving terminating endpoint", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.1.11:53")), false},
		{"udp clusterIP to terminated (not serving) endpoint", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.1.12:53")), true},
		{"udp clusterIP to removed endpoint", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.3.99:53")), true},
		{"udp clusterIP to right endpoint IP, old port", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.1.10:5353")), true},
		{"udp clusterIP never DNATed (0 to 1 endpoints)", UDPFlow(client, ap("10.96.0.10:53"), ap("10.96.0.10:53")), true},
		{"udp clusterIP other port is no service", UDPFlow(client, ap("10.96.0.10:54"), ap("10.96.0.10:54")), false},
		{"udp externalIP to removed endpoint", UDPFlow(client, ap("192.0.2.5:53"), ap("10.244.3.99:53")), true},
		{"udp externalIP to ready endpoint", UDPFlow(client, ap("192.0.2.5:53"), ap("10.244.1.10:53")), false},
		{"udp LB IP never DNATed", UDPFlow(client, ap("192.0.2.20:53"), ap("192.0.2.20:53")), true},
		{"udp LB IP to serving endpoint", UDPFlow(client, ap("192.0.2.20:53"), ap("10.244.1.11:53")), false},
		{"udp node IP NodePort never DNATed", UDPFlow(client, ap("198.51.100.11:30053"), ap("198.51.100.11:30053")), true},
		{"udp node IP NodePort to removed endpoint", UDPFlow(client, ap("198.51.100.11:30053"), ap("10.244.3.99:53")), true},
		{"udp localhost NodePort to removed endpoint", UDPFlow(ap("127.0.0.1:40000"), ap("127.0.0.1:30053"), ap("10.244.3.99:53")), true},
		{"udp node IP NodePort to ready endpoint", UDPFlow(client, ap("198.51.100.11:30053"), ap("10.244.1.10:53")), false},
		{"udp remote address with a NodePort number", UDPFlow(ap("10.244.1.10:40000"), ap("203.0.113.9:30053"), ap("203.0.113.9:30053")), false},
		{"udp service without endpoints, never DNATed", UDPFlow(client, ap("10.96.0.20:53"), ap("10.96.0.20:53")), true},
		{"udp unrelated flow", UDPFlow(ap("10.244.1.10:40000"), ap("192.0.2.53:53"), ap("192.0.2.53:53")), false},
		{"tcp clusterIP to removed endpoint", TCPFlow(client, ap("10.96.0.10:53"), ap("10.244.3.99:53")), false},
		{"tcp clusterIP never DNATed", TCPFlow(client, ap("10.96.0.10:53"), ap("10.96.0.10:53")), false},
		{"tcp NodePort to removed endpoint", TCPFlow(client, ap("198.51.100.11:30053"), ap("10.244.3.99:53")), false},
		{"sctp clusterIP to removed endpoint", SCTPFlow(client, ap("10.96.0.30:9"), ap("10.244.3.99:9")), false},
		{"udp ipv6 flow is another family's", UDPFlow(v6client, ap("[fd00::11]:30053"), ap("[fd00::11]:30053")), false},
	}
	snap := testSnapshot(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := NewFakeTable(nodeLocal, tc.flow)
			c, err := New(Options{Family: proxier.IPv4, Table: table})
			if err != nil {
				t.Fatal(err)
			}
			n, err := c.CleanStaleFlows(context.Background(), snap, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if tc.delete {
				want = 1
			}
			if n != want || len(table.Flows()) != 1-want {
				t.Errorf("deleted %d, %d left; want deleted %d (flow %s)", n, len(table.Flows()), want, tc.flow)
			}
		})
	}

	// All at once: one dump, the same answers.
	table := NewFakeTable(nodeLocal)
	wantLeft := 0
	for _, tc := range cases {
		table.Add(tc.flow)
		if !tc.delete {
			wantLeft++
		}
	}
	c, _ := New(Options{Family: proxier.IPv4, Table: table})
	n, err := c.CleanStaleFlows(context.Background(), snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(cases)-wantLeft || len(table.Flows()) != wantLeft || table.Dumps != 1 {
		t.Errorf("all at once: deleted %d, %d left, %d dumps; want %d, %d, 1", n, len(table.Flows()), table.Dumps, len(cases)-wantLeft, wantLeft)
	}
}

// A Local-policy endpoint on another node still serves: its flows stay,
// although this node sends no new traffic there.
func TestKeepsFlowsToServingEndpointsThisNodeDoesNotUse(t *testing.T) {
	ports := []svcPort{{name: "dns", port: 53, proto: v1.ProtocolUDP}}
	svc := service("dns", "10.96.0.10", v1.ServiceTypeClusterIP, ports...)
	local := v1.ServiceInternalTrafficPolicyLocal
	svc.Spec.InternalTrafficPolicy = &local
	snap := snapshot(t, svc, slice("dns", "dns-1", ports,
		ready("10.244.1.10"), ep{ip: "10.244.2.10", ready: true, serving: true, node: "node2"}))
	p := snap.Services[nsName("dns")].Ports[0]
	if len(p.Usable.AllReachable) != 1 {
		t.Fatalf("setup: AllReachable = %v, want only the local endpoint", p.Usable.AllReachable)
	}
	remote := UDPFlow(ap("10.244.1.20:40000"), ap("10.96.0.10:53"), ap("10.244.2.10:53"))
	gone := UDPFlow(ap("198.51.100.100:40001"), ap("10.96.0.10:53"), ap("10.244.2.99:53"))
	table := NewFakeTable(nodeLocal, remote, gone)
	c, _ := New(Options{Family: proxier.IPv4, Table: table})
	n, err := c.CleanStaleFlows(context.Background(), snap, nil)
	if err != nil || n != 1 {
		t.Fatalf("CleanStaleFlows = %d, %v; want 1, nil", n, err)
	}
	if left := table.Flows(); len(left) != 1 || left[0] != remote {
		t.Errorf("left %v, want only the flow to the remote serving endpoint", left)
	}
}

func TestNoUDPServiceNoDump(t *testing.T) {
	table := NewFakeTable(nodeLocal, TCPFlow(client, ap("10.96.0.30:9"), ap("10.244.3.99:9")))
	c, _ := New(Options{Family: proxier.IPv4, Table: table})
	snap := snapshot(t, service("sctp", "10.96.0.30", "", sctpPorts...))
	for _, s := range []*proxier.Snapshot{nil, snap} {
		if n, err := c.CleanStaleFlows(context.Background(), s, nil); n != 0 || err != nil {
			t.Errorf("CleanStaleFlows = %d, %v; want 0, nil", n, err)
		}
	}
	if table.Dumps != 0 {
		t.Errorf("dumped the table %d times without any UDP service", table.Dumps)
	}
}

// Only NodePorts (and listeners, TestStaleFlowsRedirected) need the local
// addresses: without them they are not asked for, so their failure cannot
// matter.
func TestLocalAddrsOnlyForNodePorts(t *testing.T) {
	table := NewFakeTable(nil, UDPFlow(client, ap("10.96.0.20:53"), ap("10.96.0.20:53")))
	table.AddrErr = errors.New("boom")
	c, _ := New(Options{Family: proxier.IPv4, Table: table})
	if n, err := c.CleanStaleFlows(context.Background(), snapshot(t, service("empty", "10.96.0.20", "", emptyPorts...)), nil); n != 1 || err != nil {
		t.Errorf("ClusterIP only: CleanStaleFlows = %d, %v; want 1, nil", n, err)
	}
	table.Add(UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.3.99:53")))
	n, err := c.CleanStaleFlows(context.Background(), testSnapshot(t), nil)
	if err == nil || n != 0 || len(table.Flows()) != 1 {
		t.Errorf("with a NodePort and failing LocalAddrs: %d, %v, %d left; want 0, an error, 1 left", n, err, len(table.Flows()))
	}
}

func TestTableErrors(t *testing.T) {
	stale := func() []*netlink.ConntrackFlow {
		return []*netlink.ConntrackFlow{
			UDPFlow(ap("198.51.100.100:1"), ap("10.96.0.10:53"), ap("10.244.3.99:53")),
			UDPFlow(ap("198.51.100.100:2"), ap("10.96.0.10:53"), ap("10.244.3.99:53")),
		}
	}
	snap := testSnapshot(t)

	t.Run("dump fails", func(t *testing.T) {
		table := NewFakeTable(nodeLocal, stale()...)
		table.DumpErr = errors.New("ENOBUFS")
		c, _ := New(Options{Family: proxier.IPv4, Table: table})
		n, err := c.CleanStaleFlows(context.Background(), snap, nil)
		if n != 0 || !errors.Is(err, table.DumpErr) || len(table.Flows()) != 2 {
			t.Errorf("got %d, %v, %d left; want 0, ENOBUFS, 2", n, err, len(table.Flows()))
		}
	})
	t.Run("dump interrupted", func(t *testing.T) {
		table := NewFakeTable(nodeLocal, stale()...)
		table.Interrupt = true
		c, _ := New(Options{Family: proxier.IPv4, Table: table})
		n, err := c.CleanStaleFlows(context.Background(), snap, nil)
		if n != 2 || !errors.Is(err, netlink.ErrDumpInterrupted) || len(table.Flows()) != 0 {
			t.Errorf("got %d, %v, %d left; want 2, ErrDumpInterrupted, 0", n, err, len(table.Flows()))
		}
	})
	t.Run("one delete fails", func(t *testing.T) {
		flows := stale()
		table := NewFakeTable(nodeLocal, flows...)
		table.FailDelete = func(f *netlink.ConntrackFlow) error {
			if f == flows[0] {
				return errors.New("EPERM")
			}
			return nil
		}
		c, _ := New(Options{Family: proxier.IPv4, Table: table})
		n, err := c.CleanStaleFlows(context.Background(), snap, nil)
		if n != 1 || err == nil || len(table.Flows()) != 1 || table.Flows()[0] != flows[0] {
			t.Errorf("got %d, %v, %v left; want 1, an error, the failed flow left", n, err, table.Flows())
		}
	})
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{Family: "IPv5"}); err == nil {
		t.Error("New accepted an unknown family")
	}
	c, err := New(Options{Family: proxier.IPv6, Table: NewFakeTable(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CleanStaleFlows(context.Background(), testSnapshot(t), nil); err == nil {
		t.Error("an IPv6 cleaner accepted an IPv4 snapshot")
	}
}
