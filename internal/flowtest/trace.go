package flowtest

import (
	"strings"

	"github.com/kproxy/kproxy/internal/xtables"
)

// TraceStart is the packet as an xtables.Tracer starts with it, and the
// nat hook it enters: OUTPUT for the node's own traffic (no incoming
// interface), PREROUTING for the others, coming in on podIface from a
// local pod and on eth0 from anywhere else.
func (p Packet) TraceStart(podIface string) (xtables.TracePacket, string) {
	tp := xtables.TracePacket{Src: p.Src, Dst: p.Dst, DstPort: p.DstPort, Protocol: strings.ToLower(string(p.Protocol))}
	switch p.Source {
	case FromNode:
		return tp, "OUTPUT"
	case FromLocalPod:
		tp.In = podIface
	default:
		tp.In = "eth0"
	}
	return tp, "PREROUTING"
}
