package testrig

import "encoding/binary"

// ICMPv6 destination-unreachable (RFC 4443).
const (
	icmp6DstUnreach  = 1
	icmp6PortUnreach = 4
	ipv6HeaderLen    = 40
)

// icmp6UnreachCodes names the ICMPv6 destination-unreachable codes.
var icmp6UnreachCodes = map[int]string{
	0: "no route", 1: "admin prohibited", 3: "address unreachable", 4: "port unreachable",
	5: "source policy failed", 6: "reject route",
}

// parseICMPv6Unreach returns the destination-unreachable in b (an ICMPv6
// message, as a raw socket reads it) if it quotes an ipProto packet from local
// port localPort (any port if 0), else nil. Quoted packets with extension
// headers are not matched: the rig's probes send none.
func parseICMPv6Unreach(b []byte, ipProto byte, localPort int) *ICMPError {
	if len(b) < 8+ipv6HeaderLen+4 || b[0] != icmp6DstUnreach {
		return nil
	}
	inner := b[8:]
	if inner[0]>>4 != 6 || inner[6] != ipProto {
		return nil
	}
	if localPort != 0 && int(binary.BigEndian.Uint16(inner[ipv6HeaderLen:])) != localPort {
		return nil
	}
	return &ICMPError{Type: int(b[0]), Code: int(b[1]), IPv6: true}
}
