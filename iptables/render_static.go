package iptables

import (
	"github.com/kproxy/kproxy/proxier"
)

// writeStatic writes the rules that do not depend on Services:
// masquerading and the anti-martian rule.
func (r *renderer) writeStatic(out map[string]map[string]*body) {
	nat := out[tableNAT]
	mark := r.masqMark + "/" + r.masqMark
	nat[chainPostrouting].add(chainPostrouting, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	nat[chainPostrouting].add(chainPostrouting, "-j", "MARK", "--set-xmark", r.masqMark+"/0x0")
	masq := []string{"-m", "comment", "--comment", saveQuote("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE"}
	if r.randomFully {
		masq = append(masq, "--random-fully")
	}
	nat[chainPostrouting].add(chainPostrouting, masq...)
	nat[chainMarkMasq].add(chainMarkMasq, "-j", "MARK", "--set-xmark", mark)

	if r.opts.Family == proxier.IPv4 && r.opts.LocalhostNodePorts {
		// route_localnet makes 127.0.0.0/8 routable; this rule keeps
		// other hosts from reaching localhost-bound services
		// (CVE-2020-8558). kubelet may write the same rule.
		b := &body{}
		out[tableFilter][chainKubeletFirewall] = b
		b.add(chainKubeletFirewall, "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8", "-m", "comment", "--comment", saveQuote("block incoming localnet connections"),
			"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
	}
}

// writeNodePortsJump writes the rules that must come last in nat
// KUBE-SERVICES: the jumps to KUBE-NODEPORTS.
func (r *renderer) writeNodePortsJump(snap *proxier.Snapshot, b *body) {
	comment := []string{"-m", "comment", "--comment", saveQuote("kubernetes service nodeports; NOTE: this must be the last rule in this chain")}
	noLoopback := []string{"!", "-d", "127.0.0.0/8"}
	if r.opts.Family == proxier.IPv6 {
		noLoopback = []string{"!", "-d", "::1/128"}
	} else if r.opts.LocalhostNodePorts {
		noLoopback = nil
	}
	local := []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePorts}
	for _, d := range proxier.NodePortDests(r.opts.Family, r.opts.NodePortAddresses, snap.Node.PrimaryIP()) {
		switch {
		case d.All:
			b.add(chainServices, join(noLoopback, comment, local)...)
		case !d.Local:
			b.add(chainServices, join([]string{"-d", d.Prefix.String()}, comment, []string{"-j", chainNodePorts})...)
		default:
			// A CIDR: the node's local addresses inside it. Matching with
			// addrtype keeps Render pure and follows address changes. A
			// negated -d cannot be combined with another -d: the loopback
			// exclusion is implied by the CIDR unless it contains loopback.
			b.add(chainServices, join([]string{"-d", d.Prefix.String()}, comment, local)...)
		}
	}
}

// writeForward writes filter KUBE-FORWARD.
func (r *renderer) writeForward(b *body) {
	if !r.opts.TCPBeLiberal {
		b.add(chainForward, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	}
	b.add(chainForward, "-m", "comment", "--comment", saveQuote("kubernetes forwarding rules"),
		"-m", "mark", "--mark", r.masqMark+"/"+r.masqMark, "-j", "ACCEPT")
	b.add(chainForward, "-m", "comment", "--comment", saveQuote("kubernetes forwarding conntrack rule"),
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
}
