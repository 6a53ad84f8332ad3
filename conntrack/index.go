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
	// load-balancer IP, with the service port) to the endpoints flows to it
	// may keep going to.
	services map[netip.AddrPort]addrSet
	// nodePorts maps each UDP NodePort to the same endpoint set; a flow
	// matches when its original destination is one of local's addresses.
	nodePorts map[uint16]addrSet
	// local are the node's own addresses; only needed when nodePorts is
	// not empty (see withLocal).
	local map[netip.Addr]bool
}

// newIndex builds the index of the snapshot's UDP service ports.
func newIndex(snap *proxier.Snapshot) *index {
	x := &index{services: map[netip.AddrPort]addrSet{}, nodePorts: map[uint16]addrSet{}}
	if snap == nil {
		return x
	}
	for p := range portsOf(snap, v1.ProtocolUDP) {
		allowed := servingEndpoints(p)
		for a := range serviceAddrs(p) {
			x.addService(a, allowed)
		}
		if p.NodePort > 0 {
			x.nodePorts[uint16(p.NodePort)] = union(x.nodePorts[uint16(p.NodePort)], allowed)
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
		port := uint16(p.Port)
		for _, ips := range [][]netip.Addr{{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs} {
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

func (x *index) addService(a netip.AddrPort, allowed addrSet) {
	// Two Services cannot own one address:port in a valid cluster; if they
	// do, keep flows to either's endpoints rather than fight over them.
	x.services[a] = union(x.services[a], allowed)
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

// needsLocal reports whether matching needs the node's local addresses.
func (x *index) needsLocal() bool { return len(x.nodePorts) > 0 }

// withLocal records the node's local addresses.
func (x *index) withLocal(addrs []netip.Addr) {
	x.local = make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		x.local[a.Unmap()] = true
	}
}

// stale reports whether flow must be deleted: a UDP flow whose original
// destination is a service address (or a local address and a NodePort)
// and whose reply source is not an allowed endpoint. A flow that was never
// DNATed has the service address itself as reply source, so it is stale
// as soon as the service has an endpoint rule to reach.
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
	if allowed, ok := x.services[dst]; ok {
		if _, keep := allowed[replySrc]; !keep {
			return true
		}
	}
	if allowed, ok := x.nodePorts[dst.Port()]; ok && x.local[dst.Addr()] {
		if _, keep := allowed[replySrc]; !keep {
			return true
		}
	}
	return false
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
