package iptables

import (
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// writeStaticHead declares the dispatch chains and writes the rules that do
// not depend on Services: masquerading and the anti-martian rule.
func (r *renderer) writeStaticHead(snap *proxier.Snapshot) {
	for _, c := range []string{chainServices, chainExternalServices, chainForward, chainNodePorts, chainProxyFirewall} {
		r.filter.chain(c)
	}
	for _, c := range []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq} {
		r.nat.chain(c)
	}
	mark := r.masqMark + "/" + r.masqMark
	r.nat.line("-A", chainPostrouting, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	r.nat.line("-A", chainPostrouting, "-j", "MARK", "--xor-mark", r.masqMark)
	if r.randomFully {
		r.nat.line("-A", chainPostrouting, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE", "--random-fully")
	} else {
		r.nat.line("-A", chainPostrouting, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE")
	}
	r.nat.line("-A", chainMarkMasq, "-j", "MARK", "--or-mark", r.masqMark)

	if r.opts.Family == proxier.IPv4 && r.opts.LocalhostNodePorts {
		// route_localnet makes 127.0.0.0/8 routable; this rule keeps
		// other hosts from reaching localhost-bound services
		// (CVE-2020-8558). kubelet may write the same rule.
		r.filter.chain(chainKubeletFirewall)
		r.filter.line("-A", chainKubeletFirewall, "-m", "comment", "--comment", `"block incoming localnet connections"`,
			"-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
	}
}

// writeStaticTail writes the rules that must come after every Service's:
// the jump to KUBE-NODEPORTS (last in nat KUBE-SERVICES) and KUBE-FORWARD.
func (r *renderer) writeStaticTail(snap *proxier.Snapshot) {
	const comment = `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`
	noLoopback := []string{"!", "-d", "127.0.0.0/8"}
	if r.opts.Family == proxier.IPv6 {
		noLoopback = []string{"!", "-d", "::1/128"}
	} else if r.opts.LocalhostNodePorts {
		noLoopback = nil
	}
	if len(r.opts.NodePortAddresses) == 0 {
		r.nat.line(join([]string{"-A", chainServices, "-m", "comment", "--comment", comment, "-m", "addrtype", "--dst-type", "LOCAL"},
			noLoopback, []string{"-j", chainNodePorts})...)
	}
	for _, a := range r.opts.NodePortAddresses {
		if a == "primary" {
			ip := nodeIP(snap)
			if !ip.IsValid() {
				klog.InfoS("NodePorts on the primary IP requested but the node has no IP of this family yet", "family", r.opts.Family)
				continue
			}
			r.nat.line("-A", chainServices, "-m", "comment", "--comment", comment, "-d", ip.String(), "-j", chainNodePorts)
			continue
		}
		// A CIDR: the node's local addresses inside it. Matching with
		// addrtype keeps Render pure and follows address changes.
		r.nat.line(join([]string{"-A", chainServices, "-m", "comment", "--comment", comment, "-d", a, "-m", "addrtype", "--dst-type", "LOCAL"},
			noLoopback, []string{"-j", chainNodePorts})...)
	}

	if !r.opts.TCPBeLiberal {
		r.filter.line("-A", chainForward, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	}
	r.filter.line("-A", chainForward, "-m", "comment", "--comment", `"kubernetes forwarding rules"`,
		"-m", "mark", "--mark", r.masqMark+"/"+r.masqMark, "-j", "ACCEPT")
	r.filter.line("-A", chainForward, "-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`,
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
}

func join(parts ...[]string) []string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]string, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
