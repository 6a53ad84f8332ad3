package ipvs

import (
	"fmt"
	"strings"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Chains kproxy's ipvs mode owns, per table. The rule set does not grow
// with the number of Services: everything per-Service is in ipsets.
var ownedChains = map[string][]string{
	"nat":    {"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"},
	"filter": {"KUBE-FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-IPVS-FILTER"},
}

// tables in the order they are written.
var tables = []string{"nat", "filter"}

// jumpComment marks the jump rules kproxy adds to the built-in chains.
const jumpComment = "kproxy ipvs"

// jump is a rule in a built-in chain that sends traffic to one of ours.
type jump struct{ table, chain, target string }

var jumps = []jump{
	{"nat", "PREROUTING", "KUBE-SERVICES"},
	{"nat", "OUTPUT", "KUBE-SERVICES"},
	{"nat", "POSTROUTING", "KUBE-POSTROUTING"},
	{"filter", "INPUT", "KUBE-PROXY-FIREWALL"},
	{"filter", "INPUT", "KUBE-IPVS-FILTER"},
	{"filter", "OUTPUT", "KUBE-IPVS-FILTER"},
	{"filter", "FORWARD", "KUBE-FORWARD"},
}

// rule is the rule text of j as iptables-save prints it (after "-A chain ").
func (j jump) rule() string {
	return fmt.Sprintf(`-m comment --comment "%s" -j %s`, jumpComment, j.target)
}

// renderRules returns the iptables-restore text of kproxy's chains
// (declarations flush them; the jump rules are added by the applier).
func renderRules(opts *Options, family proxier.Family) string {
	set := func(def setDef) string { return def.name(family) }
	mark := opts.masqMark()
	local := opts.LocalDetector.ForFamily(family)
	rejectWith := "icmp-port-unreachable"
	if family == proxier.IPv6 {
		rejectWith = "icmp6-port-unreachable"
	}
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("*nat")
	for _, chain := range ownedChains["nat"] {
		line(":%s - [0:0]", chain)
	}
	switch {
	case opts.MasqueradeAll:
		line(`-A KUBE-SERVICES -m comment --comment "masquerade all ClusterIP traffic" -m set --match-set %s dst,dst -j KUBE-MARK-MASQ`, set(setClusterIP))
	case local.IsImplemented():
		line(`-A KUBE-SERVICES -m comment --comment "ClusterIP traffic from outside the cluster" -m set --match-set %s dst,dst %s -j KUBE-MARK-MASQ`, set(setClusterIP), strings.Join(xtables.IfNotLocal(local), " "))
	}
	line(`-A KUBE-SERVICES -m set --match-set %s dst,dst -j KUBE-MARK-MASQ`, set(setExternalIP))
	line(`-A KUBE-SERVICES -m set --match-set %s dst,dst -m set ! --match-set %s dst,dst -j KUBE-MARK-MASQ`, set(setLB), set(setLBLocal))
	line(`-A KUBE-SERVICES -m set --match-set %s dst,dst -j KUBE-MARK-MASQ`, set(setNodePort))
	line(`-A KUBE-POSTROUTING -m comment --comment "hairpin" -m set --match-set %s dst,dst,src -j MASQUERADE`, set(setLoopBack))
	line(`-A KUBE-POSTROUTING -m mark ! --mark %s/%s -j RETURN`, mark, mark)
	line(`-A KUBE-POSTROUTING -j MARK --xor-mark %s`, mark)
	line(`-A KUBE-POSTROUTING -j MASQUERADE --random-fully`)
	line(`-A KUBE-MARK-MASQ -j MARK --or-mark %s`, mark)
	line("COMMIT")

	line("*filter")
	for _, chain := range ownedChains["filter"] {
		line(":%s - [0:0]", chain)
	}
	line(`-A KUBE-FORWARD -m mark --mark %s/%s -j ACCEPT`, mark, mark)
	line(`-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
	line(`-A KUBE-PROXY-FIREWALL -m set --match-set %s dst,dst -j KUBE-SOURCE-RANGES-FIREWALL`, set(setLBFW))
	line(`-A KUBE-SOURCE-RANGES-FIREWALL -m set --match-set %s dst,dst,src -j RETURN`, set(setLBSource))
	line(`-A KUBE-SOURCE-RANGES-FIREWALL -j DROP`)
	line(`-A KUBE-IPVS-FILTER -m set --match-set %s dst,dst -j ACCEPT`, set(setHealthCheck))
	line(`-A KUBE-IPVS-FILTER -m comment --comment "no endpoints" -m conntrack --ctstate NEW -m set --match-set %s dst,dst -j REJECT --reject-with %s`, set(setNoEndpoints), rejectWith)
	line(`-A KUBE-IPVS-FILTER -m comment --comment "no local endpoints" -m conntrack --ctstate NEW -m set --match-set %s dst,dst -j DROP`, set(setNoLocal))
	// Local policy without local endpoints: the virtual server uses the
	// Cluster endpoints for pods (and the node, which IPVS has already
	// redirected before filter OUTPUT); traffic from outside is dropped.
	if local.IsImplemented() {
		line(`-A KUBE-IPVS-FILTER -m set --match-set %s dst,dst %s -j RETURN`, set(setExtNoLocal), strings.Join(xtables.IfLocal(local), " "))
	}
	line(`-A KUBE-IPVS-FILTER -m comment --comment "no local endpoints, from outside the cluster" -m conntrack --ctstate NEW -m set --match-set %s dst,dst -m addrtype ! --src-type LOCAL -j DROP`, set(setExtNoLocal))
	for _, def := range []setDef{setClusterIP, setExternalIP, setExternalLocal, setLB} {
		line(`-A KUBE-IPVS-FILTER -m set --match-set %s dst,dst -j RETURN`, set(def))
	}
	line(`-A KUBE-IPVS-FILTER -m comment --comment "other ports of Service addresses" -m conntrack --ctstate NEW -m set --match-set %s dst -j REJECT --reject-with %s`, set(setIPVSIPs), rejectWith)
	line("COMMIT")
	return b.String()
}

// withJumps inserts, before each table's COMMIT, the jump rules that
// present (table → set of "chain rule" lines) lacks.
func withJumps(rules string, present map[string]bool) string {
	var b strings.Builder
	table := ""
	for _, line := range strings.SplitAfter(rules, "\n") {
		if strings.HasPrefix(line, "*") {
			table = strings.TrimSpace(line[1:])
		}
		if strings.TrimSpace(line) == "COMMIT" {
			for _, j := range jumps {
				if j.table == table && !present[jumpKey(j)] {
					fmt.Fprintf(&b, "-I %s 1 %s\n", j.chain, j.rule())
				}
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

func jumpKey(j jump) string { return j.table + " -A " + j.chain + " " + j.rule() }

// countRules counts the -A/-I lines of an iptables-restore input per table.
func countRules(rules string) map[string]int {
	n := map[string]int{}
	table := ""
	for _, line := range strings.Split(rules, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, "-A ") || strings.HasPrefix(line, "-I "):
			n[table]++
		}
	}
	return n
}
