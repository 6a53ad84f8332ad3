package nftables

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleCompiler turns the rules a partial sync writes into the expressions
// nft 1.0.6 makes of them (`nft --debug=netlink` shows them; the kernel
// tests compare the two). It knows only the shapes of the service port
// chains; for any other rule it says no and the sync goes by nft -f.
type ruleCompiler struct {
	v6 bool
}

// compile is rule's expressions, or ok false.
func (c ruleCompiler) compile(rule string) (exprs []expr.Any, ok bool) {
	t := strings.Fields(rule)
	for len(t) > 0 {
		var e []expr.Any
		var n int
		switch t[0] {
		case "meta":
			e, n = c.l4proto(t)
		case "numgen":
			e, n = c.numgen(t)
		case "ip", "ip6":
			e, n = c.addrMatch(t)
		case "fib":
			e, n = c.fibLocal(t)
		case "iifname":
			e, n = c.iifname(t)
		case "mark":
			e, n = c.setMark(t)
		case "dnat":
			e, n = c.dnat(t)
		default:
			e, n = c.verdict(t)
		}
		if n == 0 {
			return nil, false
		}
		exprs = append(exprs, e...)
		t = t[n:]
	}
	return exprs, len(exprs) > 0
}

// l4proto: "meta l4proto tcp|udp|sctp".
func (c ruleCompiler) l4proto(t []string) ([]expr.Any, int) {
	if len(t) < 3 || t[1] != "l4proto" {
		return nil, 0
	}
	proto, ok := protoNumbers[t[2]]
	if !ok {
		return nil, 0
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}, 3
}

var protoNumbers = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "sctp": unix.IPPROTO_SCTP}

// numgen: "numgen random mod K V", V < K.
func (c ruleCompiler) numgen(t []string) ([]expr.Any, int) {
	if len(t) < 5 || t[1] != "random" || t[2] != "mod" {
		return nil, 0
	}
	mod, err1 := strconv.ParseUint(t[3], 10, 32)
	val, err2 := strconv.ParseUint(t[4], 10, 32)
	if err1 != nil || err2 != nil || val >= mod {
		return nil, 0
	}
	return []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(mod), Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(val))},
	}, 5
}

// addrMatch: "ip|ip6 saddr|daddr [!=] ADDR[/BITS]", the prefix whole
// bytes (nft loads only those; other prefixes it masks).
func (c ruleCompiler) addrMatch(t []string) ([]expr.Any, int) {
	if len(t) < 3 || (t[0] == "ip6") != c.v6 {
		return nil, 0
	}
	offset, ok := c.addrOffset(t[1])
	if !ok {
		return nil, 0
	}
	op, n := expr.CmpOpEq, 2
	if t[2] == "!=" {
		op, n = expr.CmpOpNeq, 3
	}
	if len(t) <= n {
		return nil, 0
	}
	prefix, ok := c.prefix(t[n])
	if !ok || prefix.Bits()%8 != 0 || prefix.Bits() == 0 {
		return nil, 0
	}
	data := prefix.Addr().AsSlice()[:prefix.Bits()/8]
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(data))},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}, n + 1
}

// addrOffset is where the network header holds the source or destination.
func (c ruleCompiler) addrOffset(dir string) (uint32, bool) {
	switch {
	case dir == "saddr" && !c.v6:
		return 12, true
	case dir == "daddr" && !c.v6:
		return 16, true
	case dir == "saddr":
		return 8, true
	case dir == "daddr":
		return 24, true
	}
	return 0, false
}

// prefix parses an address or a masked prefix of the compiler's family.
func (c ruleCompiler) prefix(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is6() != c.v6 || p.Addr().Is4In6() || p.Addr().Zone() != "" || p != p.Masked() {
		return netip.Prefix{}, false
	}
	return p, true
}

// fibLocal: "fib saddr type local".
func (c ruleCompiler) fibLocal(t []string) ([]expr.Any, int) {
	if len(t) < 4 || t[1] != "saddr" || t[2] != "type" || t[3] != "local" {
		return nil, 0
	}
	return []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}, 4
}

// iifname: "iifname [!=] NAME" or "NAME*" (a prefix: nft compares only
// its bytes; a whole name it compares with the padding to IFNAMSIZ).
func (c ruleCompiler) iifname(t []string) ([]expr.Any, int) {
	op, n := expr.CmpOpEq, 1
	if len(t) > 1 && t[1] == "!=" {
		op, n = expr.CmpOpNeq, 2
	}
	if len(t) <= n {
		return nil, 0
	}
	name, wildcard := strings.CutSuffix(t[n], "*")
	if !plainIfName(name) || (wildcard && name == "") {
		return nil, 0
	}
	data := []byte(name)
	if !wildcard {
		data = make([]byte, unix.IFNAMSIZ)
		copy(data, name)
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: data},
	}, n + 1
}

// plainIfName is an interface name nft takes unquoted and as written.
func plainIfName(s string) bool {
	if len(s) >= unix.IFNAMSIZ {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// setMark: "mark set mark or BITS".
func (c ruleCompiler) setMark(t []string) ([]expr.Any, int) {
	if len(t) < 5 || t[1] != "set" || t[2] != "mark" || t[3] != "or" {
		return nil, 0
	}
	hex, ok := strings.CutPrefix(t[4], "0x")
	bits, err := strconv.ParseUint(hex, 16, 32)
	if !ok || err != nil {
		return nil, 0
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^uint32(bits)), Xor: binaryutil.NativeEndian.PutUint32(uint32(bits))},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	}, 5
}

// dnat: "dnat to ADDR:PORT" (IPv6 "[ADDR]:PORT"), the rule's end.
func (c ruleCompiler) dnat(t []string) ([]expr.Any, int) {
	if len(t) != 3 || t[1] != "to" {
		return nil, 0
	}
	ap, err := netip.ParseAddrPort(t[2])
	if err != nil || ap.Addr().Is6() != c.v6 || ap.Addr().Is4In6() || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return nil, 0
	}
	family := uint32(unix.NFPROTO_IPV4)
	if c.v6 {
		family = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: ap.Addr().AsSlice()},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, ap.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}, 3
}

// verdict: "goto|jump CHAIN" or "drop|accept|return", the rule's end.
func (c ruleCompiler) verdict(t []string) ([]expr.Any, int) {
	v, ok := parseVerdict(t)
	if !ok {
		return nil, 0
	}
	return []expr.Any{v}, len(t)
}

// parseVerdict parses a whole verdict ("goto CHAIN", "drop", …).
func parseVerdict(t []string) (*expr.Verdict, bool) {
	switch {
	case len(t) == 1 && t[0] == "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}, true
	case len(t) == 1 && t[0] == "accept":
		return &expr.Verdict{Kind: expr.VerdictAccept}, true
	case len(t) == 1 && t[0] == "return":
		return &expr.Verdict{Kind: expr.VerdictReturn}, true
	case len(t) == 2 && t[0] == "goto" && plainChainName(t[1]):
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: t[1]}, true
	case len(t) == 2 && t[0] == "jump" && plainChainName(t[1]):
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: t[1]}, true
	}
	return nil, false
}

// plainChainName is a chain name nft takes unquoted: no quote, brace or
// separator, and short enough for the kernel (NFT_CHAIN_MAXNAMELEN).
func plainChainName(s string) bool {
	return s != "" && len(s) < 256 && !strings.ContainsAny(s, "\"{};,@$#") && s[0] != '-'
}

// portBytes is a port as nft keeps it in a register: big-endian.
func portBytes(s string) ([]byte, bool) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return nil, false
	}
	return binary.BigEndian.AppendUint16(nil, uint16(p)), true
}
