package ipvs

// The shared packet-flow table with real packets, inside the IPVS VM:
// every scenario is synced (full) into node1's namespace of a 2-node
// topology and every case is probed from its source's namespace.

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

func TestKernelFlowTable(t *testing.T) {
	requireVM(t)
	testrig.RequireRoot(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 3})
	for _, pod := range topo.Pods() {
		for _, port := range flowtest.EchoPorts {
			testrig.StartEchoServers(t, pod.Netns, fmt.Sprintf("%s:%d", pod.IP, port), pod.IP, []int{port}, testrig.TCPUDP)
		}
	}
	if err := topo.AddClientRoute("10.96.0.0/16", 1); err != nil {
		t.Fatal(err)
	}
	opts := flowOptions()
	opts.Kernel = NewKernel(proxier.IPv4, "/run/netns/"+topo.Node(1).Netns)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup(context.Background()) })
	for _, sc := range flowtest.Scenarios() {
		if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: sc.Snapshot(), Full: true}); err != nil {
			t.Fatalf("%s: sync: %v", sc.Name, err)
		}
		for _, c := range flowCases(&sc) {
			pk, err := sc.Packet(&c)
			if err != nil {
				t.Fatal(err)
			}
			probeFlowCase(t, topo, &c, pk)
		}
	}
}

// probeFlowCase sends a few fresh connections for one case and checks
// each against it.
func probeFlowCase(t *testing.T, topo *testrig.Topology, c *flowtest.Case, pk flowtest.Packet) {
	t.Helper()
	ns := ""
	switch pk.Source {
	case flowtest.FromNode:
		ns = topo.Node(1).Netns
	case flowtest.FromOutside:
		ns = topo.Client
	default:
		for _, pod := range topo.Pods() {
			if pod.IP == pk.Src.String() {
				ns = pod.Netns
			}
		}
	}
	if ns == "" {
		t.Fatalf("%s: no namespace for source %s", c.Name, pk.Src)
	}
	proto := testrig.TCP
	if pk.Protocol == "UDP" {
		proto = testrig.UDP
	}
	addr := netip.AddrPortFrom(pk.Dst, uint16(pk.DstPort)).String()
	tries, timeout := 3, 2*time.Second
	if c.Want == flowtest.Drop {
		tries, timeout = 1, time.Second
	}
	for range tries {
		reply, err := testrig.Probe(ns, proto, addr, timeout)
		got := testrig.Classify(err)
		if c.Want == flowtest.Forward && got == testrig.Timeout {
			// Under software emulation on a loaded host a SYN can miss the
			// 2 s window; a path that drops would time out again with a
			// longer one, so one slower retry tells load from a rule bug.
			reply, err = testrig.Probe(ns, proto, addr, 6*time.Second)
			got = testrig.Classify(err)
		}
		switch c.Want {
		case flowtest.Forward:
			if got != testrig.Answered {
				t.Errorf("%s: %s: %v, want an answer", c.Name, pk, err)
				if ns1 := topo.Node(1).Netns; testing.Verbose() {
					for _, cmd := range [][]string{{"iptables-save", "-c"}, {"ipset", "list", "-t"}, {"cat", "/proc/net/ip_vs"}, {"ip", "-br", "addr"}} {
						out, _ := testrig.Exec(ns1, cmd...)
						t.Logf("%v:\n%s", cmd, out)
					}
				}
				return
			}
			o := flowtest.Outcome{Verdict: flowtest.Forward, Endpoint: reply.Name, Masquerade: reply.SeenIP() != reply.LocalIP()}
			if pk.Source == flowtest.FromNode {
				o.Masquerade = c.Masquerade // the node's own address looks the same either way
			}
			if err := c.Check(o); err != nil {
				t.Errorf("%s: %s: %v", c.Name, pk, err)
				return
			}
		case flowtest.Reject:
			if got != testrig.Refused {
				t.Errorf("%s: %s: %s (%v), want refused", c.Name, pk, got, err)
			}
		case flowtest.Drop:
			if got != testrig.Timeout {
				t.Errorf("%s: %s: %s (%v), want a timeout", c.Name, pk, got, err)
			}
		}
	}
}
