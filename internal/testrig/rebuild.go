package testrig

import (
	"fmt"
	"net"
	"strconv"
)

// This file serves long-lived users of a Topology (the benchmark harness in
// bench/): they run one proxy after another on the same control plane and
// want a pristine node each time, and they run outside "go test", so they
// need Scope-based variants of the testing.TB helpers.

// RebuildNode deletes node index (1-based) and its pod namespaces and builds
// them again from scratch: same names, addresses and routes, but empty
// firewall tables, no conntrack entries and no sockets. Stop every process
// running in them first (a process keeps a deleted namespace alive). The new
// namespaces are deleted when s ends.
func (t *Topology) RebuildNode(s Scope, index int) error {
	if index < 1 || index > len(t.Nodes) {
		return fmt.Errorf("rebuild node %d: topology has %d nodes", index, len(t.Nodes))
	}
	n := t.Nodes[index-1]
	// Namespace teardown is asynchronous in the kernel: a veth in a deleted
	// namespace may outlive "ip netns delete" for a while, so its name would
	// still be taken. Deleting the veths first is synchronous.
	for _, p := range n.Pods {
		_, _ = ip(n.Netns, "link", "del", p.HostVeth)
	}
	_, _ = ip(t.Net, "link", "del", n.Name)
	for _, p := range n.Pods {
		if err := DeleteNetns(p.Netns); err != nil {
			return fmt.Errorf("rebuild node %s: %w", n.Name, err)
		}
	}
	// Deleting the node namespace destroys its veths, and with them their
	// peers: the bridge port in the net namespace and the pods' eth0.
	if err := DeleteNetns(n.Netns); err != nil {
		return fmt.Errorf("rebuild node %s: %w", n.Name, err)
	}
	names := []string{n.Netns}
	for _, p := range n.Pods {
		names = append(names, p.Netns)
	}
	for _, ns := range names {
		if err := CreateNetns(s, ns); err != nil {
			return fmt.Errorf("rebuild node %s: %w", n.Name, err)
		}
	}
	if err := ipBatch(t.Net, []string{
		fmt.Sprintf("link add %s type veth peer name %s netns %s", n.Name, uplinkName, n.Netns),
		fmt.Sprintf("link set %s master %s up", n.Name, bridgeName),
		fmt.Sprintf("route replace %s via %s", n.PodCIDR, n.IP),
	}); err != nil {
		return fmt.Errorf("rebuild node %s: %w", n.Name, err)
	}
	if err := t.buildNode(n, fmt.Sprintf("/%d", BridgePrefixLen)); err != nil {
		return fmt.Errorf("rebuild node %s: %w", n.Name, err)
	}
	for _, ns := range names {
		if err := setRigSysctls(ns); err != nil {
			return err
		}
	}
	return SetSysctl(n.Netns, "net.ipv4.ip_forward", "1")
}

// StartEchoServersIn is StartEchoServers for any Scope, returning the error.
// The servers are closed when s ends (or by Close).
func StartEchoServersIn(s Scope, ns, name, ip string, ports []int, proto Proto) (*EchoServers, error) {
	e := &EchoServers{Name: name, conn: map[net.Conn]struct{}{}}
	s.Cleanup(e.Close)
	for _, port := range ports {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		if proto == TCP || proto == TCPUDP {
			l, err := ListenInNetns(ns, "tcp"+family(ip), addr)
			if err != nil {
				return e, fmt.Errorf("echo server %s: listen tcp %s in netns %s: %w", name, addr, ns, err)
			}
			e.add(l, nil)
		}
		if proto == UDP || proto == TCPUDP {
			pc, err := ListenPacketInNetns(ns, "udp"+family(ip), addr)
			if err != nil {
				return e, fmt.Errorf("echo server %s: listen udp %s in netns %s: %w", name, addr, ns, err)
			}
			e.add(nil, pc)
		}
	}
	return e, nil
}
