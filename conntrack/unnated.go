package conntrack

import (
	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// TCP connections opened to a service address before its rules existed were
// routed past it: their conntrack entry has no DNAT, and it stays in
// SYN_SENT for two minutes. The client's retransmitted SYNs, and any later
// connection that reuses the same source port, match that entry, skip the
// nat table and fail too, long after the Service works. unNATedTCP finds
// those entries for the service addresses that are new since the previous
// sync: never answered (SYN_SENT) and never translated (the reply would
// come from the service address itself). No working flow looks like that.

// tcpProtoSynSent is conntrack's TCP_CONNTRACK_SYN_SENT.
const tcpProtoSynSent = 1

// freshTCPAddrs returns the TCP service addresses of snap (ClusterIP,
// externalIPs, load-balancer IPs, with the service port) that seen lacks,
// and whether snap's set differs from seen at all. A steady cluster costs
// one walk and no allocation per sync.
func freshTCPAddrs(snap *proxier.Snapshot, seen addrSet) (fresh addrSet, changed bool) {
	n := 0
	for p := range portsOf(snap, v1.ProtocolTCP) {
		for a := range serviceAddrs(p) {
			n++
			if _, ok := seen[a]; !ok {
				if fresh == nil {
					fresh = addrSet{}
				}
				fresh[a] = struct{}{}
			}
		}
	}
	// Without new addresses, equal counts mean equal sets (an address two
	// Services share counts twice and only makes this report a change).
	return fresh, len(fresh) > 0 || n != len(seen)
}

// tcpServiceAddrs is the set freshTCPAddrs compares against.
func tcpServiceAddrs(snap *proxier.Snapshot) addrSet {
	out := addrSet{}
	for p := range portsOf(snap, v1.ProtocolTCP) {
		for a := range serviceAddrs(p) {
			out[a] = struct{}{}
		}
	}
	return out
}

// unNATedTCP reports whether f is a TCP flow to one of fresh that was never
// answered nor translated.
func unNATedTCP(f *netlink.ConntrackFlow, fresh addrSet) bool {
	if f.Forward.Protocol != protoTCP {
		return false
	}
	if info, ok := f.ProtoInfo.(*netlink.ProtoInfoTCP); !ok || info.State != tcpProtoSynSent {
		return false
	}
	dst, ok := addrPort(f.Forward.DstIP, f.Forward.DstPort)
	if !ok {
		return false
	}
	if _, ok := fresh[dst]; !ok {
		return false
	}
	replySrc, ok := addrPort(f.Reverse.SrcIP, f.Reverse.SrcPort)
	return ok && replySrc == dst
}
