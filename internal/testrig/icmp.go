package testrig

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"
)

// ICMPError is an ICMP destination-unreachable (type 3; ICMPv6 type 1) that
// quoted a probe's flow.
type ICMPError struct {
	Type, Code int
	From       string // who sent it
	IPv6       bool   // an ICMPv6 message
}

// icmpUnreachCodes names the destination-unreachable codes a proxy produces.
var icmpUnreachCodes = map[int]string{
	0: "net unreachable", 1: "host unreachable", 3: "port unreachable",
	9: "net prohibited", 10: "host prohibited", 13: "admin prohibited",
}

// PortUnreachable reports whether this is the ICMP error of a plain REJECT.
func (e *ICMPError) PortUnreachable() bool {
	if e.IPv6 {
		return e.Type == icmp6DstUnreach && e.Code == icmp6PortUnreach
	}
	return e.Type == 3 && e.Code == 3
}

func (e *ICMPError) String() string {
	kind, names := "icmp", icmpUnreachCodes
	if e.IPv6 {
		kind, names = "icmpv6", icmp6UnreachCodes
	}
	name := names[e.Code]
	if name == "" {
		name = "code " + fmt.Sprint(e.Code)
	}
	return fmt.Sprintf("%s type %d %s from %s", kind, e.Type, name, e.From)
}

// icmpSniffer is a raw ICMP (or ICMPv6) socket in the probing namespace.
type icmpSniffer struct {
	pc   net.PacketConn
	ipv6 bool
}

func newICMPSniffer(ns string, ipv6 bool) (*icmpSniffer, error) {
	network, addr := "ip4:icmp", "0.0.0.0"
	if ipv6 {
		network, addr = "ip6:ipv6-icmp", "::"
	}
	pc, err := ListenPacketInNetns(ns, network, addr)
	if err != nil {
		return nil, err
	}
	return &icmpSniffer{pc: pc, ipv6: ipv6}, nil
}

func (s *icmpSniffer) Close() error { return s.pc.Close() }

// find returns the first queued destination-unreachable whose quoted header is
// proto from local port localPort. The kernel hands an ICMP error to raw sockets
// before the transport sees it, so it is queued by the time the probe's socket
// reports the error; the short deadline only bounds the search.
func (s *icmpSniffer) find(proto Proto, localPort int) *ICMPError {
	ipProto := byte(6)
	if proto == UDP {
		ipProto = 17
	}
	buf := make([]byte, 1500)
	_ = s.pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		n, from, err := s.pc.ReadFrom(buf) // IPv4 header already stripped
		if err != nil {
			return nil
		}
		b := buf[:n]
		if s.ipv6 {
			if e := parseICMPv6Unreach(b, ipProto, localPort); e != nil {
				e.From = from.String()
				return e
			}
			continue
		}
		if len(b) < 8+20 || b[0] != 3 {
			continue
		}
		inner := b[8:]
		ihl := int(inner[0]&0x0f) * 4
		if ihl < 20 || len(inner) < ihl+4 || inner[9] != ipProto {
			continue
		}
		if localPort != 0 && int(binary.BigEndian.Uint16(inner[ihl:])) != localPort {
			continue
		}
		return &ICMPError{Type: int(b[0]), Code: int(b[1]), From: from.String()}
	}
}
