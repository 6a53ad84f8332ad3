package testrig

import (
	"fmt"
	"net/netip"
)

// IPv6 address plan (TopologyOptions.IPv6), mirroring the IPv4 one in ULA
// space: the IPv4 octets are written as IPv6 groups, so 198.51.100.11 becomes
// fd00:198:51:100::11 and 10.244.1.10 becomes fd00:10:244:1::10.
const (
	// BridgeIPv6 is the net namespace's IPv6 address on the bridge.
	BridgeIPv6 = "fd00:198:51:100::1"
	// BridgePrefixLenV6 is the prefix length of the shared IPv6 node network.
	BridgePrefixLenV6 = 64
	// ClientIPv6 is the client namespace's IPv6 address on the bridge.
	ClientIPv6 = "fd00:198:51:100::100"
	// ClusterCIDRv6 holds every node's IPv6 pod CIDR (fd00:10:244:<i>::/64).
	ClusterCIDRv6 = "fd00:10:244::/56"
	// ServiceCIDRv6 is the apiserver's IPv6 service range in a dual-stack
	// topology (a /108 is the largest the apiserver accepts).
	ServiceCIDRv6 = "fd00:10:96::/108"
	// ServiceNetV6 holds ServiceCIDRv6 and the IPv6 addresses pure scenarios
	// use for Services, externalIPs and load balancers (fd00:10:96::<a>:<b>
	// for 10.96.<a>.<b>); route it with AddClientRoute.
	ServiceNetV6 = "fd00:10:96::/64"
)

// NodeIPv6 returns the IPv6 address of node index (1-based).
func NodeIPv6(index int) string { return fmt.Sprintf("fd00:198:51:100::%d", 10+index) }

// IPv6 returns the dual-stack IPv6 address of the IPv4 address ip in the
// rig's plan: a.b.c.d becomes fd00:a:b:c::d for the node network, the pod
// network and the Service network (fd00:10:96::c:d); any other address maps
// into 2001:db8:ffff::/96, which the rig never routes. It returns "" for an
// address that is not IPv4.
func IPv6(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return ""
	}
	b := a.As4()
	switch {
	case b[0] == 198 && b[1] == 51 && b[2] == 100, b[0] == 10 && b[1] == 244:
		return fmt.Sprintf("fd00:%d:%d:%d::%d", b[0], b[1], b[2], b[3])
	case b[0] == 10 && b[1] == 96:
		return fmt.Sprintf("fd00:10:96::%d:%d", b[2], b[3])
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}).String()
}

// planIPv6 fills in the IPv6 addresses of nodes and pods.
func (t *Topology) planIPv6() {
	for _, n := range t.Nodes {
		n.IPv6 = NodeIPv6(n.Index)
		n.PodCIDRv6 = netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%d::/64", n.Index))
		n.GatewayIPv6 = IPv6(n.Gateway)
		for _, p := range n.Pods {
			p.IPv6 = IPv6(p.IP)
		}
	}
}

// disableDAD turns duplicate address detection off in a new namespace,
// before its interfaces exist, so their link-local addresses are usable at
// once (a tentative one delays neighbor discovery by a second or two). It
// also lifts the ICMPv6 rate limit (one error per second and destination),
// as the IPv4 plan does for ICMP, so rejects answer at once.
func disableDAD(ns string) error {
	for _, key := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad", "net.ipv6.icmp.ratelimit"} {
		if err := SetSysctl(ns, key, "0"); err != nil {
			return err
		}
	}
	return nil
}

// buildIPv6 adds IPv6 addresses and routes to a built IPv4 topology, the same
// shape as the IPv4 ones. Addresses skip duplicate address detection (nodad
// here, accept_dad=0 from disableDAD), so they are usable at once.
func (t *Topology) buildIPv6() error {
	bridge := fmt.Sprintf("/%d", BridgePrefixLenV6)
	netCmds := []string{"addr add " + BridgeIPv6 + bridge + " dev " + bridgeName + " nodad"}
	for _, n := range t.Nodes {
		netCmds = append(netCmds, fmt.Sprintf("route add %s via %s", n.PodCIDRv6, n.IPv6))
	}
	if err := ipBatch(t.Net, netCmds); err != nil {
		return err
	}
	if err := ipBatch(t.Client, []string{"addr add " + ClientIPv6 + bridge + " dev " + uplinkName + " nodad"}); err != nil {
		return err
	}
	for _, n := range t.Nodes {
		if err := t.buildNodeIPv6(n, bridge); err != nil {
			return err
		}
		if err := SetSysctl(n.Netns, "net.ipv6.conf.all.forwarding", "1"); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) buildNodeIPv6(n *Node, bridge string) error {
	cmds := []string{
		fmt.Sprintf("addr add %s%s dev %s nodad", n.IPv6, bridge, uplinkName),
		"route add ::/0 dev " + sinkName,
	}
	for _, other := range t.Nodes {
		if other != n {
			cmds = append(cmds, fmt.Sprintf("route add %s via %s", other.PodCIDRv6, other.IPv6))
		}
	}
	for _, p := range n.Pods {
		cmds = append(cmds,
			fmt.Sprintf("addr add %s/128 dev %s nodad", n.GatewayIPv6, p.HostVeth),
			fmt.Sprintf("route add %s/128 dev %s src %s", p.IPv6, p.HostVeth, n.GatewayIPv6),
		)
	}
	if err := ipBatch(n.Netns, cmds); err != nil {
		return err
	}
	for _, p := range n.Pods {
		if err := ipBatch(p.Netns, []string{
			fmt.Sprintf("addr add %s/128 dev %s nodad", p.IPv6, uplinkName),
			fmt.Sprintf("route add %s/128 dev %s", n.GatewayIPv6, uplinkName),
			fmt.Sprintf("route add default via %s dev %s src %s", n.GatewayIPv6, uplinkName, p.IPv6),
		}); err != nil {
			return err
		}
	}
	return nil
}

// isIPv6 reports whether addr ("ip" or "ip:port", IPv6 in brackets) is an
// IPv6 address.
func isIPv6(addr string) bool {
	a, err := netip.ParseAddr(hostOf(addr))
	return err == nil && a.Is6()
}

// family returns the suffix of Go's network names ("tcp4", "udp6") for addr.
func family(addr string) string {
	if isIPv6(addr) {
		return "6"
	}
	return "4"
}

// IPv6View returns a copy of a dual-stack topology whose IPv4 fields (Node.IP,
// PodCIDR, Gateway, Pod.IP) hold the IPv6 addresses, for helpers written
// against the IPv4 plan that look nodes and pods up by address. Namespaces
// are the same; the view builds and deletes nothing.
func (t *Topology) IPv6View() *Topology {
	v := *t
	v.Nodes = nil
	for _, n := range t.Nodes {
		nv := *n
		nv.IP, nv.PodCIDR, nv.Gateway, nv.Pods = n.IPv6, n.PodCIDRv6, n.GatewayIPv6, nil
		for _, p := range n.Pods {
			pv := *p
			pv.Node, pv.IP = &nv, p.IPv6
			nv.Pods = append(nv.Pods, &pv)
		}
		v.Nodes = append(v.Nodes, &nv)
	}
	return &v
}
