package userspace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/kproxy/kproxy/proxier"
)

// srcMatch is a source condition of a redirect: any source (zero value),
// the node's own addresses, a CIDR, or the local-traffic detector's
// interface match (pods), the last two possibly narrowed to a CIDR.
type srcMatch struct {
	local bool
	cidr  netip.Prefix
	pods  []string
}

func (m srcMatch) String() string {
	var b strings.Builder
	if m.local {
		b.WriteString(" -m addrtype --src-type LOCAL")
	}
	if m.cidr.IsValid() {
		b.WriteString(" -s " + m.cidr.String())
	}
	for _, w := range m.pods {
		b.WriteString(" " + w)
	}
	return b.String()
}

// within narrows m to the sources in r; false if none is left. (iptables
// takes one -s per rule: two nested CIDRs intersect to the smaller one,
// others not at all.)
func (m srcMatch) within(r netip.Prefix) (srcMatch, bool) {
	r = r.Masked()
	switch {
	case !m.cidr.IsValid() || m.cidr.Bits() <= r.Bits() && m.cidr.Contains(r.Addr()):
		m.cidr = r
	case r.Bits() <= m.cidr.Bits() && r.Contains(m.cidr.Addr()):
	default:
		return m, false
	}
	return m, true
}

// ruleComment is the comment match of a listener's rule.
func ruleComment(spec *listenerSpec, what string) string {
	return fmt.Sprintf("-m comment --comment \"%s %s\"", spec.Key.Name, what)
}

// servicePortMatch matches the listener's protocol and service port.
func servicePortMatch(spec *listenerSpec) string {
	return fmt.Sprintf("-p %s --dport %d", protocolName(spec), spec.Port)
}

// protocolName is the listener's protocol as iptables spells it.
func protocolName(spec *listenerSpec) string { return strings.ToLower(string(spec.Protocol)) }

// nodePortMatches returns the destination matches of node port traffic.
func nodePortMatches(node *proxier.NodeInfo, opts *Options) []string {
	var out []string
	for _, d := range proxier.NodePortDests(opts.Family, opts.NodePortAddresses, node.PrimaryIP()) {
		switch {
		case d.All:
			loopback := "127.0.0.0/8"
			if opts.Family == proxier.IPv6 {
				loopback = "::1/128"
			}
			out = append(out, fmt.Sprintf("! -d %s -m addrtype --dst-type LOCAL", loopback))
		case d.Local:
			// Only the node's own addresses in the CIDR: traffic the node
			// routes to other hosts in it is not captured.
			out = append(out, "-d "+d.Prefix.String()+" -m addrtype --dst-type LOCAL")
		default:
			out = append(out, "-d "+d.Prefix.String())
		}
	}
	return out
}
