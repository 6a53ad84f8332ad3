package conntrack

import (
	"context"
	"testing"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// userspaceRedirects: the userspace mode's listeners for testSnapshot. The
// DNS port's ClusterIP goes to proxy port 40001, its external addresses and
// NodePort to 40002; "empty" has no endpoint, so its traffic is rejected,
// not redirected, although its listener stays open.
var userspaceRedirects = proxier.Redirects{
	{NamespacedName: nsName("dns"), Port: "dns", Protocol: v1.ProtocolUDP}:     {Internal: 40001, External: 40002},
	{NamespacedName: nsName("empty"), Port: "", Protocol: v1.ProtocolUDP}:      {},
	{NamespacedName: nsName("dns"), Port: "dns-tcp", Protocol: v1.ProtocolTCP}: {Internal: 40003, External: 40004},
}

// TestStaleFlowsRedirected is the packet-flow table of the cleaner in the
// userspace mode: a REDIRECTed flow's reply source is the node's own
// listener (the address the datagram was redirected to, the proxy port),
// never an endpoint. Such flows are live while that listener serves the
// address; they used to be deleted at every sync.
func TestStaleFlowsRedirected(t *testing.T) {
	loClient := ap("127.0.0.1:40000")
	cases := []struct {
		name   string
		flow   *netlink.ConntrackFlow
		delete bool
	}{
		{"clusterIP redirected in PREROUTING to its listener", UDPFlow(client, ap("10.96.0.10:53"), ap("198.51.100.11:40001")), false},
		{"clusterIP from a pod, redirected to the bridge address", UDPFlow(ap("10.244.1.5:40000"), ap("10.96.0.10:53"), ap("10.244.1.1:40001")), false},
		{"clusterIP redirected in OUTPUT to loopback", UDPFlow(loClient, ap("10.96.0.10:53"), ap("127.0.0.1:40001")), false},
		{"clusterIP to a listener port of before a restart", UDPFlow(client, ap("10.96.0.10:53"), ap("198.51.100.11:39999")), true},
		{"clusterIP to the external listener", UDPFlow(client, ap("10.96.0.10:53"), ap("198.51.100.11:40002")), true},
		{"clusterIP answered by a remote address with the listener port", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.3.99:40001")), true},
		{"clusterIP to the TCP listener's port", UDPFlow(client, ap("10.96.0.10:53"), ap("198.51.100.11:40003")), true},
		{"clusterIP to a ready endpoint", UDPFlow(client, ap("10.96.0.10:53"), ap("10.244.1.10:53")), false},
		{"clusterIP never redirected", UDPFlow(client, ap("10.96.0.10:53"), ap("10.96.0.10:53")), true},
		{"externalIP to the external listener", UDPFlow(client, ap("192.0.2.5:53"), ap("198.51.100.11:40002")), false},
		{"externalIP to the internal listener", UDPFlow(client, ap("192.0.2.5:53"), ap("198.51.100.11:40001")), true},
		{"LB IP to the external listener", UDPFlow(client, ap("192.0.2.20:53"), ap("198.51.100.11:40002")), false},
		{"NodePort to the external listener", UDPFlow(client, ap("198.51.100.11:30053"), ap("198.51.100.11:40002")), false},
		{"localhost NodePort to the external listener", UDPFlow(loClient, ap("127.0.0.1:30053"), ap("127.0.0.1:40002")), false},
		{"NodePort to the internal listener", UDPFlow(client, ap("198.51.100.11:30053"), ap("198.51.100.11:40001")), true},
		{"rejected service, flow to its listener of before", UDPFlow(client, ap("10.96.0.20:53"), ap("198.51.100.11:40005")), true},
	}
	snap := testSnapshot(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := NewFakeTable(nodeLocal, tc.flow)
			c, err := New(Options{Family: proxier.IPv4, Table: table, UnNATedTCP: true})
			if err != nil {
				t.Fatal(err)
			}
			n, err := c.CleanStaleFlows(context.Background(), snap, userspaceRedirects)
			if err != nil {
				t.Fatal(err)
			}
			if deleted := n == 1 && len(table.Flows()) == 0; deleted != tc.delete {
				t.Errorf("deleted = %v, want %v (flow %s)", deleted, tc.delete, tc.flow)
			}
		})
	}
}

// Without redirects (the kernel modes) a flow answered by a local address
// is no endpoint's: stale.
func TestListenerFlowStaleWithoutRedirects(t *testing.T) {
	table := NewFakeTable(nodeLocal, UDPFlow(client, ap("10.96.0.10:53"), ap("198.51.100.11:40001")))
	c, _ := New(Options{Family: proxier.IPv4, Table: table})
	if n, err := c.CleanStaleFlows(context.Background(), testSnapshot(t), nil); n != 1 || err != nil {
		t.Errorf("CleanStaleFlows = %d, %v; want 1, nil", n, err)
	}
}
