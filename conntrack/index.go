package conntrack

import (
	"iter"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// addrSet is a set of ip:port pairs.
type addrSet map[netip.AddrPort]struct{}

// index answers "is this conntrack flow stale?" for one snapshot. It is
// pure data built once per sync, so matching the table is O(entries).
type index struct {
	// services maps each UDP service address (ClusterIP, externalIP and
	// load-balancer IP, with the service port) to where flows to it may
	// keep going.
	services map[netip.AddrPort]target
	// nodePorts maps each UDP NodePort to the same; a flow matches when
	// its original destination is one of local's addresses.
	nodePorts map[uint16]target
	// local are the node's own addresses; only needed when nodePorts or
	// a listener is not empty (see withLocal).
	local map[netip.Addr]bool
}

// target is where the flows to one service address may keep going: the
// endpoints, and the node's own listener on port listener when the
// address is redirected to one (userspace mode; 0: none). A redirected
// flow's reply source is a local address (the one the datagram was
// redirected to) with the listener's port.
type target struct {
	endpoints addrSet
	listener  uint16
}

// newIndex builds the index of the snapshot's UDP service ports and the
// listeners redirects sends them to.
func newIndex(snap *proxier.Snapshot, redirects proxier.Redirects) *index {
	x := &index{services: map[netip.AddrPort]target{}, nodePorts: map[uint16]target{}}
	if snap == nil {
		return x
	}
	for p := range portsOf(snap, v1.ProtocolUDP) {
		allowed := servingEndpoints(p)
		to := redirects[p.Name]
		internal, external := target{allowed, to.Internal}, target{allowed, to.External}
		x.addService(netip.AddrPortFrom(p.ClusterIP, uint16(p.Port)), internal)
		for a := range externalAddrs(p) {
			x.addService(a, external)
		}
		if p.NodePort > 0 {
			x.nodePorts[uint16(p.NodePort)] = merge(x.nodePorts[uint16(p.NodePort)], external)
		}
	}
	return x
}

// portsOf yields the service ports of snap with protocol proto.
func portsOf(snap *proxier.Snapshot, proto v1.Protocol) iter.Seq[*proxier.Port] {
	return func(yield func(*proxier.Port) bool) {
		for _, svc := range snap.Services {
			for i := range svc.Ports {
				if svc.Ports[i].Protocol == proto && !yield(&svc.Ports[i]) {
					return
				}
			}
		}
	}
}

// serviceAddrs yields a port's service addresses: ClusterIP, externalIPs
// and load-balancer IPs, each with the service port.
func serviceAddrs(p *proxier.Port) iter.Seq[netip.AddrPort] {
	return func(yield func(netip.AddrPort) bool) {
		if p.ClusterIP.IsValid() && !yield(netip.AddrPortFrom(p.ClusterIP, uint16(p.Port))) {
			return
		}
		for a := range externalAddrs(p) {
			if !yield(a) {
				return
			}
		}
	}
}

// externalAddrs yields a port's external service addresses: externalIPs
// and load-balancer IPs, each with the service port.
func externalAddrs(p *proxier.Port) iter.Seq[netip.AddrPort] {
	return func(yield func(netip.AddrPort) bool) {
		port := uint16(p.Port)
		for _, ips := range [][]netip.Addr{p.ExternalIPs, p.LoadBalancerIPs} {
			for _, ip := range ips {
				if ip.IsValid() && !yield(netip.AddrPortFrom(ip, port)) {
					return
				}
			}
		}
	}
}

// servingEndpoints are the endpoints a flow to the port may keep using:
// every endpoint this node may send new traffic to (Usable.AllReachable)
// plus every other endpoint that still serves. Like upstream kube-proxy we
// keep flows to a serving endpoint even when new traffic no longer picks it
// (it is terminating while ready ones exist, or topology or a Local policy
// excludes it): it still answers, and cutting the flow would break graceful
// termination. Flows to an endpoint that is gone, not serving, or on a
// different port are stale.
func servingEndpoints(p *proxier.Port) addrSet {
	s := addrSet{}
	for _, e := range p.Usable.AllReachable {
		s[e.AddrPort()] = struct{}{}
	}
	for _, e := range p.Endpoints {
		if e.Ready || e.Serving {
			s[e.AddrPort()] = struct{}{}
		}
	}
	return s
}

func (x *index) addService(a netip.AddrPort, t target) {
	if !a.Addr().IsValid() {
		return
	}
	// Two Services cannot own one address:port in a valid cluster; if they
	// do, keep flows to either's endpoints rather than fight over them.
	x.services[a] = merge(x.services[a], t)
}

// merge is where flows to an address two service ports claim may go: to
// either's endpoints, and to b's listener unless b has none.
func merge(a, b target) target {
	if b.listener == 0 {
		b.listener = a.listener
	}
	b.endpoints = union(a.endpoints, b.endpoints)
	return b
}

func union(a, b addrSet) addrSet {
	if a == nil {
		return b
	}
	out := make(addrSet, len(a)+len(b))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

// empty reports whether no UDP service exists, so the table need not be
// dumped at all.
func (x *index) empty() bool { return len(x.services) == 0 && len(x.nodePorts) == 0 }

// needsLocal reports whether matching needs the node's local addresses:
// for NodePorts, and for flows redirected to the node's own listeners.
func (x *index) needsLocal() bool {
	if len(x.nodePorts) > 0 {
		return true
	}
	for _, t := range x.services {
		if t.listener != 0 {
			return true
		}
	}
	return false
}

// withLocal records the node's local addresses.
func (x *index) withLocal(addrs []netip.Addr) {
	x.local = make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		x.local[a.Unmap()] = true
	}
}

// stale reports whether flow must be deleted: a UDP flow whose original
// destination is a service address (or a local address and a NodePort)
// and whose reply source is neither an allowed endpoint nor the listener
// the address is redirected to. A flow that was never DNATed has the
// service address itself as reply source, so it is stale as soon as the
// service has an endpoint rule to reach.
func (x *index) stale(f *netlink.ConntrackFlow) bool {
	if f.Forward.Protocol != protoUDP {
		return false
	}
	dst, ok := addrPort(f.Forward.DstIP, f.Forward.DstPort)
	if !ok {
		return false
	}
	replySrc, ok := addrPort(f.Reverse.SrcIP, f.Reverse.SrcPort)
	if !ok {
		return false
	}
	if t, ok := x.services[dst]; ok && !x.keeps(t, replySrc) {
		return true
	}
	if t, ok := x.nodePorts[dst.Port()]; ok && x.local[dst.Addr()] && !x.keeps(t, replySrc) {
		return true
	}
	return false
}

// keeps reports whether a flow answered from replySrc still goes where
// t allows: one of its endpoints, or its listener on one of the node's
// addresses.
func (x *index) keeps(t target, replySrc netip.AddrPort) bool {
	if _, ok := t.endpoints[replySrc]; ok {
		return true
	}
	return t.listener != 0 && replySrc.Port() == t.listener && x.local[replySrc.Addr()]
}

// protoUDP is IPPROTO_UDP.
const protoUDP = 17

func addrPort(ip net.IP, port uint16) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), port), true
}
