package conntrack

import (
	"github.com/vishvananda/netlink"
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
