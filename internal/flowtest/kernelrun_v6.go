package flowtest

import (
	"net/netip"
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
)

// NewKernelTopologyIPv6 is NewKernelTopology in a dual-stack topology with
// the echo servers on the pods' IPv6 addresses, named "[ipv6]:port" as
// ScenariosIPv6 names endpoints, and the client routing the IPv6 Service
// network (testrig.ServiceNetV6) to node1. Give a KernelProber
// topo.IPv6View(), so it finds the pods by their IPv6 addresses.
func NewKernelTopologyIPv6(t *testing.T) (*testrig.Topology, map[string]*testrig.EchoServers) {
	t.Helper()
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 3, IPv6: true})
	echo := map[string]*testrig.EchoServers{}
	for _, pod := range topo.Pods() {
		for _, port := range EchoPorts {
			name := netip.AddrPortFrom(netip.MustParseAddr(pod.IPv6), uint16(port)).String()
			echo[name] = testrig.StartEchoServers(t, pod.Netns, name, pod.IPv6, []int{port}, testrig.TCPUDP)
		}
	}
	if err := topo.AddClientRoute(testrig.ServiceNetV6, 1); err != nil {
		t.Fatal(err)
	}
	return topo, echo
}

// RunScenariosIPv6 is RunScenarios over ScenariosIPv6; sync gets the IPv6
// scenario (program sc.SnapshotIPv6()). A Reject case is probed once, as
// each costs a second: the ICMPv6 error for a SYN comes back in the sending
// thread's softirq while connect still holds the socket lock, so TCP drops
// it (TcpExtLockDroppedIcmps) and only the SYN retransmitted after a
// second is refused (IPv4 refuses at once).
func (k *KernelProber) RunScenariosIPv6(t *testing.T, sync func(t *testing.T, sc *Scenario)) {
	tries := func(c *Case) int {
		if c.Want == Reject {
			return 1
		}
		return 3
	}
	k.runTable(t, ScenariosIPv6(), (*Scenario).PacketIPv6, tries, sync)
}
