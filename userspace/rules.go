package userspace

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Our chains. Everything this mode puts in the kernel is in them, plus the
// jump rules in the jumps table.
const (
	chainServices  = "KPROXY-US-SERVICES"  // nat: REDIRECT service destinations to the listeners
	chainNodePorts = "KPROXY-US-NODEPORTS" // nat: REDIRECT node ports on node addresses
	chainFilter    = "KPROXY-US-FILTER"    // filter: reject (no endpoints) and drop (no local endpoints, blocked sources)
)

// jump is one rule hooking our chains into a builtin chain.
type jump struct {
	table, chain, target string
	match                []string
}

// jumps is the static structure: where our chains are hooked. Pod and
// outside traffic passes nat PREROUTING, the node's own traffic nat OUTPUT;
// rejected traffic is not redirected, so it meets the filter table in INPUT
// (node ports), FORWARD (pods to a ClusterIP) or OUTPUT (the node itself).
var jumps = []jump{
	{table: "nat", chain: "PREROUTING", target: chainServices},
	{table: "nat", chain: "OUTPUT", target: chainServices},
	{table: "filter", chain: "INPUT", target: chainFilter, match: []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{table: "filter", chain: "FORWARD", target: chainFilter, match: []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{table: "filter", chain: "OUTPUT", target: chainFilter, match: []string{"-m", "conntrack", "--ctstate", "NEW"}},
}

func (j jump) rule() []string {
	r := append([]string{}, j.match...)
	return append(r, "-m", "comment", "--comment", "kproxy userspace", "-j", j.target)
}

// ruleSet is one rendered iptables-restore input.
type ruleSet struct {
	Text   string
	Counts map[string]int // rules per table
}

// renderRules renders our chains for the listeners that have a port. It is
// pure: the same specs, ports and node give the same text.
func renderRules(specs []listenerSpec, ports map[listenerKey]int, node *proxier.NodeInfo, opts *Options) ruleSet {
	var nat, nodePorts, filter []string
	nodeMatches := nodePortMatches(node, opts)
	for i := range specs {
		s := &specs[i]
		port, ok := ports[s.Key]
		proto := strings.ToLower(string(s.Protocol))
		svcPort := fmt.Sprintf("-p %s --dport %d", proto, s.Port)
		comment := func(what string) string { return fmt.Sprintf("-m comment --comment \"%s %s\"", s.Key.Name, what) }
		reject, why := s.Reject, "has no endpoints"
		if !ok && !reject && s.Drop != dropAll {
			// Its listener could not be opened (logged by Sync): refuse
			// at once rather than let the traffic be routed on.
			reject, why = true, "has no proxy listener"
		}
		if reject {
			rej := "-j REJECT"
			if s.Protocol == v1.ProtocolTCP {
				rej = "-j REJECT --reject-with tcp-reset"
			}
			for _, d := range append(append([]netip.Addr{}, s.Dests...), s.LBIPs...) {
				filter = append(filter, fmt.Sprintf("-A %s %s -d %s %s %s", chainFilter, comment(why), hostPrefix(d), svcPort, rej))
			}
			if s.NodePort != 0 {
				for _, m := range nodeMatches {
					filter = append(filter, fmt.Sprintf("-A %s %s %s -p %s --dport %d %s", chainFilter, comment(why), m, proto, s.NodePort, rej))
				}
			}
			continue
		}
		if s.Drop != dropNone {
			drop := "-j DROP"
			for _, d := range append(append([]netip.Addr{}, s.Dests...), s.LBIPs...) {
				filter = append(filter, fmt.Sprintf("-A %s %s -d %s %s %s", chainFilter, comment("has no local endpoints"), hostPrefix(d), svcPort, drop))
			}
			if s.NodePort != 0 {
				for _, m := range nodeMatches {
					filter = append(filter, fmt.Sprintf("-A %s %s %s -p %s --dport %d %s", chainFilter, comment("has no local endpoints"), m, proto, s.NodePort, drop))
				}
			}
			if s.Drop == dropAll {
				continue
			}
		}
		// srcs are the source matches that are redirected: all, or only pods
		// and the node itself when outside traffic is dropped.
		srcs := []srcMatch{{}}
		if s.Drop == dropOutside {
			srcs = []srcMatch{{local: true}}
			if c, ok := opts.LocalDetector.CIDR(); ok {
				srcs = append(srcs, srcMatch{cidr: c})
			} else if pods := xtables.IfLocal(opts.LocalDetector); pods != nil {
				srcs = append(srcs, srcMatch{pods: pods})
			}
		}
		redirect := fmt.Sprintf("-j REDIRECT --to-ports %d", port)
		what := "external IP"
		if s.Key.Class == internal {
			what = "cluster IP"
		}
		for _, src := range srcs {
			for _, d := range s.Dests {
				nat = append(nat, fmt.Sprintf("-A %s %s%s -d %s %s %s", chainServices, comment(what), src, hostPrefix(d), svcPort, redirect))
			}
			for _, d := range s.LBIPs {
				if !s.RangesSet {
					nat = append(nat, fmt.Sprintf("-A %s %s%s -d %s %s %s", chainServices, comment("loadbalancer IP"), src, hostPrefix(d), svcPort, redirect))
					continue
				}
				// The ranges apply to every source, also to the pods and
				// the node that the Local policy short-circuits (upstream's
				// firewall chain comes before the short-circuit).
				for _, r := range s.SourceRanges {
					if m, ok := src.within(r); ok {
						nat = append(nat, fmt.Sprintf("-A %s %s%s -d %s %s %s", chainServices, comment("loadbalancer IP"), m, hostPrefix(d), svcPort, redirect))
					}
				}
			}
			if s.NodePort != 0 {
				nodePorts = append(nodePorts, fmt.Sprintf("-A %s %s%s -p %s --dport %d %s", chainNodePorts, comment("node port"), src, proto, s.NodePort, redirect))
			}
		}
		if s.RangesSet && s.Drop == dropNone {
			// Sources outside the ranges are not redirected: drop them here
			// rather than let them be routed.
			for _, d := range s.LBIPs {
				filter = append(filter, fmt.Sprintf("-A %s %s -d %s %s -j DROP", chainFilter, comment("blocked by loadBalancerSourceRanges"), hostPrefix(d), svcPort))
			}
		}
	}
	filter = append(filter, proxyPortGuards(specs, ports)...)
	// Node ports last: a ClusterIP or external IP rule must win over a
	// node port that happens to share the port number.
	for _, m := range nodeMatches {
		nat = append(nat, fmt.Sprintf("-A %s -m comment --comment \"node ports\" %s -j %s", chainServices, m, chainNodePorts))
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", chainServices, chainNodePorts)
	writeLines(&b, nat)
	writeLines(&b, nodePorts)
	b.WriteString("COMMIT\n*filter\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n", chainFilter)
	writeLines(&b, filter)
	b.WriteString("COMMIT\n")
	return ruleSet{Text: b.String(), Counts: map[string]int{"nat": len(nat) + len(nodePorts), "filter": len(filter)}}
}

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

// multiportMax is how many ports one multiport match takes.
const multiportMax = 15

// proxyPortGuards drops new connections that reach a proxy port directly
// rather than through a redirect (the listeners are bound to the wildcard
// address): without them, the ports would bypass loadBalancerSourceRanges
// and the Local-policy drops, and expose ClusterIP-only Services outside
// the node. REDIRECT sets the connection's DNAT status; --dst-type LOCAL
// keeps forwarded traffic that merely uses the same port number out.
func proxyPortGuards(specs []listenerSpec, ports map[listenerKey]int) []string {
	byProto := map[string][]int{}
	for i := range specs {
		if p, ok := ports[specs[i].Key]; ok {
			proto := strings.ToLower(string(specs[i].Protocol))
			byProto[proto] = append(byProto[proto], p)
		}
	}
	var out []string
	for _, proto := range []string{"tcp", "udp"} {
		ps := byProto[proto]
		slices.Sort(ps)
		for len(ps) > 0 {
			n := min(len(ps), multiportMax)
			list := make([]string, n)
			for i, p := range ps[:n] {
				list[i] = strconv.Itoa(p)
			}
			out = append(out, fmt.Sprintf("-A %s -m comment --comment \"proxy ports only through service addresses\" -p %s -m multiport --dports %s -m addrtype --dst-type LOCAL -m conntrack ! --ctstate DNAT -j DROP", chainFilter, proto, strings.Join(list, ",")))
			ps = ps[n:]
		}
	}
	return out
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}

// nodePortMatches returns the destination matches of node port traffic.
func nodePortMatches(node *proxier.NodeInfo, opts *Options) []string {
	var primary netip.Addr
	if len(node.IPs) > 0 {
		primary = node.IPs[0]
	}
	var out []string
	for _, d := range proxier.NodePortDests(opts.Family, opts.NodePortAddresses, primary) {
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

func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}
