package conntrack

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/proxier"
)

// inState gives a TCP flow its conntrack state.
func inState(f *netlink.ConntrackFlow, state uint8) *netlink.ConntrackFlow {
	f.ProtoInfo = &netlink.ProtoInfoTCP{State: state}
	return f
}

const tcpEstablished = 3 // TCP_CONNTRACK_ESTABLISHED

// Which TCP entries the first clean-up with UnNATedTCP deletes: only
// never-answered, never-translated ones to a service address.
func TestUnNATedTCPFlows(t *testing.T) {
	cases := []struct {
		name   string
		flow   *netlink.ConntrackFlow
		delete bool
	}{
		{"SYN_SENT to clusterIP, not DNATed", inState(TCPFlow(client, ap("10.96.0.10:53"), ap("10.96.0.10:53")), tcpProtoSynSent), true},
		{"SYN_SENT to externalIP, not DNATed", inState(TCPFlow(client, ap("192.0.2.5:53"), ap("192.0.2.5:53")), tcpProtoSynSent), true},
		{"SYN_SENT to LB IP, not DNATed", inState(TCPFlow(client, ap("192.0.2.20:53"), ap("192.0.2.20:53")), tcpProtoSynSent), true},
		{"SYN_SENT to clusterIP, DNATed", inState(TCPFlow(client, ap("10.96.0.10:53"), ap("10.244.1.10:53")), tcpProtoSynSent), false},
		{"established to clusterIP, not DNATed", inState(TCPFlow(client, ap("10.96.0.10:53"), ap("10.96.0.10:53")), tcpEstablished), false},
		{"SYN_SENT to an address no Service has", inState(TCPFlow(client, ap("10.96.0.99:80"), ap("10.96.0.99:80")), tcpProtoSynSent), false},
		{"SYN_SENT to clusterIP, other port", inState(TCPFlow(client, ap("10.96.0.10:80"), ap("10.96.0.10:80")), tcpProtoSynSent), false},
		{"no TCP state reported", TCPFlow(client, ap("10.96.0.10:53"), ap("10.96.0.10:53")), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := NewFakeTable(nodeLocal, tc.flow)
			c, _ := New(Options{Family: proxier.IPv4, Table: table, UnNATedTCP: true})
			if _, err := c.CleanStaleFlows(context.Background(), testSnapshot(t), nil); err != nil {
				t.Fatal(err)
			}
			if deleted := len(table.Flows()) == 0; deleted != tc.delete {
				t.Errorf("deleted = %v, want %v", deleted, tc.delete)
			}
		})
	}
	// Without the option such entries stay (the ipvs mode).
	table := NewFakeTable(nodeLocal, cases[0].flow)
	c, _ := New(Options{Family: proxier.IPv4, Table: table})
	if _, err := c.CleanStaleFlows(context.Background(), testSnapshot(t), nil); err != nil || len(table.Flows()) != 1 {
		t.Errorf("without UnNATedTCP: err %v, %d flows left, want the flow kept", err, len(table.Flows()))
	}
}

// Only addresses new since the last successful clean-up are looked at, and
// a TCP-only snapshot dumps the table only when it has new ones.
func TestUnNATedTCPOnlyNewAddresses(t *testing.T) {
	web := []svcPort{{name: "http", port: 80, proto: v1.ProtocolTCP}}
	snap := func(names ...string) *proxier.Snapshot {
		var objs []any
		for i, n := range names {
			objs = append(objs, service(n, netip.AddrFrom4([4]byte{10, 96, 1, byte(i + 1)}).String(), "", web...))
		}
		return snapshot(t, objs...)
	}
	stale := func(ip string) *netlink.ConntrackFlow {
		return inState(TCPFlow(client, ap(ip+":80"), ap(ip+":80")), tcpProtoSynSent)
	}
	table := NewFakeTable(nodeLocal)
	c, _ := New(Options{Family: proxier.IPv4, Table: table, UnNATedTCP: true})
	clean := func(s *proxier.Snapshot) {
		t.Helper()
		if _, err := c.CleanStaleFlows(context.Background(), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	clean(snap("a"))
	if table.Dumps != 1 {
		t.Fatalf("first clean-up: %d dumps, want 1 (every address is new)", table.Dumps)
	}
	// Same Services: nothing new, no dump; an old address's entry is left
	// alone (it was opened after the rules, so something else is wrong).
	table.Add(stale("10.96.1.1"))
	clean(snap("a"))
	if table.Dumps != 1 || len(table.Flows()) != 1 {
		t.Errorf("nothing new: %d dumps, %d flows; want 1 dump, the flow kept", table.Dumps, len(table.Flows()))
	}
	// Service b appears: its entry goes, a's stays.
	table.Add(stale("10.96.1.2"))
	clean(snap("a", "b"))
	if got := table.Flows(); table.Dumps != 2 || len(got) != 1 || got[0].Forward.DstIP.String() != "10.96.1.1" {
		t.Errorf("b new: %d dumps, flows %v; want 2 dumps, only a's flow left", table.Dumps, got)
	}
	// b goes away and comes back: its address is new again.
	clean(snap("a"))
	table.Add(stale("10.96.1.2"))
	clean(snap("a", "b"))
	for _, f := range table.Flows() {
		if f.Forward.DstIP.String() == "10.96.1.2" {
			t.Errorf("b's entry survived b's return")
		}
	}
	// A failed dump keeps the addresses new for the next clean-up.
	table.Add(stale("10.96.1.3"))
	table.DumpErr = errors.New("boom")
	if _, err := c.CleanStaleFlows(context.Background(), snap("a", "b", "c"), nil); err == nil {
		t.Fatal("want the dump error")
	}
	table.DumpErr = nil
	clean(snap("a", "b", "c"))
	for _, f := range table.Flows() {
		if f.Forward.DstIP.String() == "10.96.1.3" {
			t.Errorf("c's entry survived the retry after a failed dump")
		}
	}
}

// A snapshot whose Services are all the previous one's costs one pointer
// comparison per Service and no allocation: it runs after every sync, at
// any cluster size.
func TestSeenServicesSteadyStateDoesNotAllocate(t *testing.T) {
	snap := testSnapshot(t)
	s := newSeenServices(true)
	s.update(snap)
	clear(s.added)
	if n := testing.AllocsPerRun(100, func() { s.update(snap) }); n != 0 {
		t.Errorf("%v allocations per update, want 0", n)
	}
	if len(s.added) != 0 {
		t.Errorf("same snapshot: added %v, want none", s.added)
	}
}

// What seenServices keeps as Services change: the TCP addresses new since
// the last clean-up, the UDP Services.
func TestSeenServicesFollowsChanges(t *testing.T) {
	web := []svcPort{{name: "http", port: 80, proto: v1.ProtocolTCP}}
	s := newSeenServices(true)
	step := func(what string, snap *proxier.Snapshot, wantAdded []string, wantUDP int) {
		t.Helper()
		s.update(snap)
		var got []string
		for a := range s.added {
			got = append(got, a.String())
		}
		slices.Sort(got)
		if !slices.Equal(got, wantAdded) || len(s.udp) != wantUDP {
			t.Errorf("%s: added %v, %d UDP Services; want %v, %d", what, got, len(s.udp), wantAdded, wantUDP)
		}
		clear(s.added)
	}
	a := service("a", "10.96.1.1", "", web...)
	step("a appears", snapshot(t, a), []string{"10.96.1.1:80"}, 0)
	step("a again, new object, same addresses", snapshot(t, a, slice("a", "a-1", web, ready("10.244.1.1"))), nil, 0)
	a.Spec.ClusterIP, a.Spec.ClusterIPs = "10.96.1.9", []string{"10.96.1.9"}
	step("a's ClusterIP changes", snapshot(t, a), []string{"10.96.1.9:80"}, 0)
	if _, ok := s.tcp[ap("10.96.1.1:80")]; ok {
		t.Errorf("a's old address still counted")
	}
	b := service("b", "10.96.1.9", "", web...) // claims a's address too
	step("b shares a's address", snapshot(t, a, b), nil, 0)
	step("a goes, b keeps the address", snapshot(t, b), nil, 0)
	if s.tcp[ap("10.96.1.9:80")] != 1 {
		t.Errorf("shared address: count %d, want 1", s.tcp[ap("10.96.1.9:80")])
	}
	step("b goes", snapshot(t), nil, 0)
	if len(s.tcp) != 0 || len(s.services) != 0 {
		t.Errorf("empty snapshot: %d addresses, %d Services kept", len(s.tcp), len(s.services))
	}
	step("a DNS Service", testSnapshot(t), []string{"10.96.0.10:53", "192.0.2.20:53", "192.0.2.5:53"}, 2)
	step("DNS gone", snapshot(t, b), []string{"10.96.1.9:80"}, 0)

	// As the tracker hands them out: the next snapshot shares the
	// unchanged Services' pointers.
	prev := snapshot(t, service("x", "10.96.2.1", "", web...), service("y", "10.96.2.2", "", web...), service("z", "10.96.2.3", "", web...))
	step("x, y, z", prev, []string{"10.96.2.1:80", "10.96.2.2:80", "10.96.2.3:80"}, 0)
	next := &proxier.Snapshot{Family: prev.Family, Services: maps.Clone(prev.Services)}
	delete(next.Services, types.NamespacedName{Namespace: "ns", Name: "x"})
	yName := types.NamespacedName{Namespace: "ns", Name: "y"}
	y := *next.Services[yName]
	y.Ports = slices.Clone(y.Ports)
	y.Ports[0].Port = 81
	next.Services[yName] = &y
	step("x gone, y's port changed, z kept", next, []string{"10.96.2.2:81"}, 0)
	if len(s.services) != 2 || len(s.tcp) != 2 {
		t.Errorf("after the shared snapshot: %d Services, %d addresses; want 2, 2", len(s.services), len(s.tcp))
	}
}
