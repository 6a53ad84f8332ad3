package flowtest

// Running the table against a real datapath: every mode's kernel test
// builds the same topology, programs node1 one scenario after another and
// probes each case with real packets from its source's namespace.

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// NewKernelTopology builds the topology the table's addresses assume: two
// nodes with three pods each, echo servers on EchoPorts (TCP and UDP) of
// every pod, each named by its "ip:port" as the cases name endpoints, and
// the client routing Service IPs to node1. It returns the echo servers by
// name, for tests that stop one. The caller checks for root first.
func NewKernelTopology(t *testing.T) (*testrig.Topology, map[string]*testrig.EchoServers) {
	t.Helper()
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 3})
	echo := map[string]*testrig.EchoServers{}
	for _, pod := range topo.Pods() {
		for _, port := range EchoPorts {
			name := fmt.Sprintf("%s:%d", pod.IP, port)
			echo[name] = testrig.StartEchoServers(t, pod.Netns, name, pod.IP, []int{port}, testrig.TCPUDP)
		}
	}
	if err := topo.AddClientRoute("10.96.0.0/16", 1); err != nil {
		t.Fatal(err)
	}
	return topo, echo
}

// KernelProber sends a case's connections through node1 of a
// NewKernelTopology and checks each outcome against the case.
type KernelProber struct {
	Topo *testrig.Topology
	// EndpointSeesNode is set for a mode whose proxy dials endpoints from
	// the node (userspace): every endpoint sees the node's address, so the
	// masquerade column does not apply.
	EndpointSeesNode bool
	// SlowRetry gives a forwarded connection that timed out one more try
	// with a longer timeout before it counts: under software emulation on
	// a loaded host a SYN can miss the normal window, while a path that
	// drops times out again.
	SlowRetry bool
	// Dump, if set, logs the datapath's state after a forwarded case got
	// no answer.
	Dump func(t *testing.T)
	// Cases, if set, adjusts a scenario's cases to the mode's documented
	// deviations; RunScenarios probes sc.Cases otherwise.
	Cases func(sc *Scenario) []Case
}

// RunScenarios programs every scenario with sync (a full sync) and probes
// each of its cases three times, in one subtest per scenario.
func (k *KernelProber) RunScenarios(t *testing.T, sync func(t *testing.T, sc *Scenario)) {
	k.runTable(t, Scenarios(), (*Scenario).Packet, func(*Case) int { return 3 }, sync)
}

// runTable programs each scenario with sync and probes its cases (as the
// mode adjusts them), in one subtest per scenario; packet is a case's
// first packet, tries how many connections the case gets.
func (k *KernelProber) runTable(t *testing.T, scenarios []Scenario, packet func(*Scenario, *Case) (Packet, error),
	tries func(*Case) int, sync func(t *testing.T, sc *Scenario)) {
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			sync(t, &sc)
			cases := sc.Cases
			if k.Cases != nil {
				cases = k.Cases(&sc)
			}
			for _, c := range cases {
				pk, err := packet(&sc, &c)
				if err != nil {
					t.Fatal(err)
				}
				k.Probe(t, &c, pk, tries(&c))
			}
		})
	}
}

// SourceNetns is the namespace a packet of this source is sent from.
func SourceNetns(topo *testrig.Topology, pk Packet) (string, bool) {
	switch pk.Source {
	case FromNode:
		return topo.Node(1).Netns, true
	case FromOutside:
		return topo.Client, true
	}
	for _, pod := range topo.Pods() {
		if pod.IP == pk.Src.String() {
			return pod.Netns, true
		}
	}
	return "", false
}

// Probe sends tries fresh connections for the case (one for a Drop case,
// which must wait out its timeout) and checks each against it; it returns
// the endpoints that answered. It stops at the first forwarded connection
// that fails its check.
func (k *KernelProber) Probe(t *testing.T, c *Case, pk Packet, tries int) map[string]bool {
	t.Helper()
	ns, ok := SourceNetns(k.Topo, pk)
	if !ok {
		t.Fatalf("%s: no namespace for source %s", c.Name, pk.Src)
	}
	proto := testrig.TCP
	if pk.Protocol == "UDP" {
		proto = testrig.UDP
	}
	addr := netip.AddrPortFrom(pk.Dst, uint16(pk.DstPort)).String()
	timeout := 2 * time.Second
	if c.Want == Drop {
		tries, timeout = 1, time.Second
	}
	seen := map[string]bool{}
	for range tries {
		reply, err := testrig.Probe(ns, proto, addr, timeout)
		got := testrig.Classify(err)
		if k.SlowRetry && c.Want == Forward && got == testrig.Timeout {
			reply, err = testrig.Probe(ns, proto, addr, 3*timeout)
			got = testrig.Classify(err)
		}
		switch c.Want {
		case Forward:
			if got != testrig.Answered {
				t.Errorf("%s: %s: %v, want an answer", c.Name, pk, err)
				if k.Dump != nil {
					k.Dump(t)
				}
				return seen
			}
			if err := c.Check(k.outcome(c, pk, reply)); err != nil {
				t.Errorf("%s: %s: %v", c.Name, pk, err)
				return seen
			}
			seen[reply.Name] = true
		case Reject:
			if got != testrig.Refused {
				t.Errorf("%s: %s: %s (%v), want refused", c.Name, pk, got, err)
			}
		case Drop:
			if got != testrig.Timeout {
				t.Errorf("%s: %s: %s (%v), want a timeout", c.Name, pk, got, err)
			}
		}
	}
	return seen
}

// outcome is what an answered connection shows: which endpoint answered,
// and whether it saw another source address than its own peer's.
func (k *KernelProber) outcome(c *Case, pk Packet, reply testrig.Reply) Outcome {
	masq := reply.SeenIP() != reply.LocalIP()
	if k.EndpointSeesNode || pk.Source == FromNode {
		// The column cannot be observed: from the node, its own address
		// looks the same masqueraded or not.
		masq = c.Masquerade
	}
	return Outcome{Verdict: Forward, Endpoint: reply.Name, Masquerade: masq}
}
