package userspace

import (
	"fmt"
	"net/netip"
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
	// Redirects are the proxy ports the rules redirect each service port
	// to, for the conntrack cleanup (SyncResult.Redirects).
	Redirects proxier.Redirects
}

// renderRules renders our chains for the listeners that have a port. It is
// pure: the same specs, ports and node give the same text.
func renderRules(specs []listenerSpec, ports map[listenerKey]int, node *proxier.NodeInfo, opts *Options) ruleSet {
	r := &ruleRender{opts: opts, nodeMatches: nodePortMatches(node, opts), redirects: proxier.Redirects{}}
	for i := range specs {
		port, open := ports[specs[i].Key]
		r.servicePort(&specs[i], port, open)
	}
	r.filter = append(r.filter, proxyPortGuards(specs, ports)...)
	// Node ports last: a ClusterIP or external IP rule must win over a
	// node port that happens to share the port number.
	for _, match := range r.nodeMatches {
		r.nat = append(r.nat, fmt.Sprintf("-A %s -m comment --comment \"node ports\" %s -j %s", chainServices, match, chainNodePorts))
	}
	return r.ruleSet()
}

// ruleRender collects the rules of one renderRules call, by chain.
type ruleRender struct {
	opts *Options
	// nodeMatches are the destination matches of node port traffic.
	nodeMatches []string
	// nat, nodePorts and filter are the rules of chainServices,
	// chainNodePorts and chainFilter.
	nat, nodePorts, filter []string
	redirects              proxier.Redirects
}

// servicePort adds the rules of one listener: a reject when it has no
// endpoint (or no open listener), the drops a Local policy asks for, and
// the redirects to its proxy port.
func (r *ruleRender) servicePort(spec *listenerSpec, port int, open bool) {
	reject, why := spec.Reject, "has no endpoints"
	if !open && !reject && spec.Drop != dropAll {
		// Its listener could not be opened (logged by Sync): refuse
		// at once rather than let the traffic be routed on.
		reject, why = true, "has no proxy listener"
	}
	if reject {
		target := "-j REJECT"
		if spec.Protocol == v1.ProtocolTCP {
			target = "-j REJECT --reject-with tcp-reset"
		}
		r.filterAllDestinations(spec, why, target)
		return
	}
	if spec.Drop != dropNone {
		r.filterAllDestinations(spec, "has no local endpoints", "-j DROP")
		if spec.Drop == dropAll {
			return
		}
	}
	r.redirect(spec, port)
	if spec.RangesSet && spec.Drop == dropNone {
		// Sources outside the ranges are not redirected: drop them here
		// rather than let them be routed.
		for _, lbIP := range spec.LBIPs {
			r.filter = append(r.filter, fmt.Sprintf("-A %s %s -d %s %s -j DROP", chainFilter, ruleComment(spec, "blocked by loadBalancerSourceRanges"), xtables.HostMatch(lbIP), servicePortMatch(spec)))
		}
	}
}

// filterAllDestinations sends the listener's traffic to target, at every
// destination: its addresses, LoadBalancer IPs and node port.
func (r *ruleRender) filterAllDestinations(spec *listenerSpec, why, target string) {
	comment := ruleComment(spec, why)
	for _, dest := range append(append([]netip.Addr{}, spec.Dests...), spec.LBIPs...) {
		r.filter = append(r.filter, fmt.Sprintf("-A %s %s -d %s %s %s", chainFilter, comment, xtables.HostMatch(dest), servicePortMatch(spec), target))
	}
	if spec.NodePort != 0 {
		for _, m := range r.nodeMatches {
			r.filter = append(r.filter, fmt.Sprintf("-A %s %s %s -p %s --dport %d %s", chainFilter, comment, m, protocolName(spec), spec.NodePort, target))
		}
	}
}

// redirect sends the listener's traffic to its proxy port, from the
// sources redirectedSources allows.
func (r *ruleRender) redirect(spec *listenerSpec, port int) {
	target := fmt.Sprintf("-j REDIRECT --to-ports %d", port)
	r.recordRedirect(spec.Key, port)
	svcPort := servicePortMatch(spec)
	what := "external IP"
	if spec.Key.Class == internal {
		what = "cluster IP"
	}
	for _, src := range r.redirectedSources(spec) {
		for _, dest := range spec.Dests {
			r.nat = append(r.nat, fmt.Sprintf("-A %s %s%s -d %s %s %s", chainServices, ruleComment(spec, what), src, xtables.HostMatch(dest), svcPort, target))
		}
		for _, lbIP := range spec.LBIPs {
			for _, m := range loadBalancerSources(spec, src) {
				r.nat = append(r.nat, fmt.Sprintf("-A %s %s%s -d %s %s %s", chainServices, ruleComment(spec, "loadbalancer IP"), m, xtables.HostMatch(lbIP), svcPort, target))
			}
		}
		if spec.NodePort != 0 {
			r.nodePorts = append(r.nodePorts, fmt.Sprintf("-A %s %s%s -p %s --dport %d %s", chainNodePorts, ruleComment(spec, "node port"), src, protocolName(spec), spec.NodePort, target))
		}
	}
}

// recordRedirect notes that key's traffic goes to proxy port port.
func (r *ruleRender) recordRedirect(key listenerKey, port int) {
	to := r.redirects[key.Name]
	if key.Class == internal {
		to.Internal = uint16(port)
	} else {
		to.External = uint16(port)
	}
	r.redirects[key.Name] = to
}

// redirectedSources are the source matches that are redirected: all, or
// only pods and the node itself when outside traffic is dropped.
func (r *ruleRender) redirectedSources(spec *listenerSpec) []srcMatch {
	if spec.Drop != dropOutside {
		return []srcMatch{{}}
	}
	srcs := []srcMatch{{local: true}}
	if cidr, ok := r.opts.LocalDetector.CIDR(); ok {
		srcs = append(srcs, srcMatch{cidr: cidr})
	} else if pods := xtables.IfLocal(r.opts.LocalDetector); pods != nil {
		srcs = append(srcs, srcMatch{pods: pods})
	}
	return srcs
}

// loadBalancerSources narrows src to the loadBalancerSourceRanges. The
// ranges apply to every source, also to the pods and the node that the
// Local policy short-circuits (upstream's firewall chain comes before the
// short-circuit).
func loadBalancerSources(spec *listenerSpec, src srcMatch) []srcMatch {
	if !spec.RangesSet {
		return []srcMatch{src}
	}
	var out []srcMatch
	for _, allowed := range spec.SourceRanges {
		if m, ok := src.within(allowed); ok {
			out = append(out, m)
		}
	}
	return out
}

// ruleSet writes the collected rules as one iptables-restore input.
func (r *ruleRender) ruleSet() ruleSet {
	var b strings.Builder
	b.WriteString("*nat\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", chainServices, chainNodePorts)
	writeLines(&b, r.nat)
	writeLines(&b, r.nodePorts)
	b.WriteString("COMMIT\n*filter\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n", chainFilter)
	writeLines(&b, r.filter)
	b.WriteString("COMMIT\n")
	return ruleSet{Text: b.String(), Counts: map[string]int{"nat": len(r.nat) + len(r.nodePorts), "filter": len(r.filter)}, Redirects: r.redirects}
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
}
