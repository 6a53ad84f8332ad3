package parity

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ruleset is one iptables-save dump: table → chain → its rules, each the
// text after "-A CHAIN ". Chain declarations are kept with their rules (an
// empty chain has an entry with no rules); counters are dropped, since
// they count packets, not rules.
type ruleset map[string]map[string][]string

// parseSave reads iptables-save output. Comment lines and COMMIT carry no
// rules.
func parseSave(save string) ruleset {
	rs := ruleset{}
	var table map[string][]string
	for _, line := range strings.Split(save, "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "#"), line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			table = map[string][]string{}
			rs[line[1:]] = table
		case strings.HasPrefix(line, ":") && table != nil:
			name := strings.Fields(line[1:])[0]
			if _, ok := table[name]; !ok {
				table[name] = nil
			}
		case strings.HasPrefix(line, "-A ") && table != nil:
			chain, rule, _ := strings.Cut(line[3:], " ")
			table[chain] = append(table[chain], rule)
		}
	}
	return rs
}

// comparedTables are the tables the proxies' rules live in.
var comparedTables = []string{"nat", "filter"}

// unordered lists the chains whose rule order kube-proxy does not define
// (it writes them while ranging over a map of services), so they compare
// as multisets. In nat KUBE-SERVICES the jump to KUBE-NODEPORTS must stay
// last; that rule is compared in place.
var unordered = map[string]map[string]bool{
	"nat":    {"KUBE-SERVICES": true, "KUBE-NODEPORTS": true},
	"filter": {"KUBE-SERVICES": true, "KUBE-EXTERNAL-SERVICES": true, "KUBE-NODEPORTS": true, "KUBE-PROXY-FIREWALL": true},
}

const nodePortsJumpComment = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"

// diffRules compares upstream's and kproxy's rules table by table and
// chain by chain and describes every difference; "" when they agree.
func diffRules(up, kp ruleset) string {
	var b strings.Builder
	for _, table := range comparedTables {
		u, k := up[table], kp[table]
		for _, chain := range unionKeys(u, k) {
			ur, uok := u[chain]
			kr, kok := k[chain]
			switch {
			case !kok:
				fmt.Fprintf(&b, "%s %s: only upstream has this chain:\n%s", table, chain, indent(ur, "  "))
			case !uok:
				fmt.Fprintf(&b, "%s %s: only kproxy has this chain:\n%s", table, chain, indent(kr, "  "))
			case unordered[table][chain]:
				if d := diffMultiset(ur, kr); d != "" {
					fmt.Fprintf(&b, "%s %s (compared as a set):\n%s", table, chain, d)
				}
				if table == "nat" && chain == "KUBE-SERVICES" && lastRule(ur) != lastRule(kr) {
					fmt.Fprintf(&b, "nat KUBE-SERVICES: last rule differs:\n  upstream: %s\n  kproxy:   %s\n", lastRule(ur), lastRule(kr))
				}
			case !slices.Equal(ur, kr):
				fmt.Fprintf(&b, "%s %s (in order):\n%s%s", table, chain, indent(ur, "  upstream: "), indent(kr, "  kproxy:   "))
			}
		}
	}
	return b.String()
}

// lastRule is the chain's last rule if it is the jump to KUBE-NODEPORTS.
func lastRule(rules []string) string {
	if len(rules) == 0 || !strings.Contains(rules[len(rules)-1], nodePortsJumpComment) {
		return "(no KUBE-NODEPORTS jump last)"
	}
	return rules[len(rules)-1]
}

// diffMultiset lists the rules only upstream (-) or only kproxy (+) has.
func diffMultiset(up, kp []string) string {
	count := map[string]int{}
	for _, r := range up {
		count[r]++
	}
	for _, r := range kp {
		count[r]--
	}
	var lines []string
	for r, n := range count {
		for ; n > 0; n-- {
			lines = append(lines, "  - upstream only: "+r)
		}
		for ; n < 0; n++ {
			lines = append(lines, "  + kproxy only:   "+r)
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func unionKeys(a, b map[string][]string) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func indent(rules []string, prefix string) string {
	if len(rules) == 0 {
		return prefix + "(empty)\n"
	}
	return prefix + strings.Join(rules, "\n"+prefix) + "\n"
}

// serviceChain matches the names of the chains that belong to one service
// port or endpoint.
var serviceChain = regexp.MustCompile(`^KUBE-(SVC|SVL|EXT|FW|SEP)-`)

// jumpTarget is the chain a rule jumps to ("" if none).
func jumpTarget(rule string) string {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// without returns a copy of rs minus the whole chains dropChain selects,
// the rules dropRule selects, and the per-service chains
// (KUBE-SVC/SVL/EXT/FW/SEP) that only the dropped rules led to,
// transitively. Other chains are kept even when unreferenced, so a stale
// chain is still seen.
func (rs ruleset) without(dropChain func(table, chain string, rules []string) bool, dropRule func(table, chain, rule string) bool) ruleset {
	out := ruleset{}
	for table, chains := range rs {
		kept := map[string][]string{}
		var work []string
		for chain, rules := range chains {
			if dropChain(table, chain, rules) {
				for _, r := range rules {
					work = append(work, jumpTarget(r))
				}
				continue
			}
			kept[chain] = nil
			for _, r := range rules {
				if dropRule(table, chain, r) {
					work = append(work, jumpTarget(r))
					continue
				}
				kept[chain] = append(kept[chain], r)
			}
		}
		for len(work) > 0 {
			c := work[len(work)-1]
			work = work[:len(work)-1]
			rules, ok := kept[c]
			if !ok || !serviceChain.MatchString(c) || referenced(kept, c) {
				continue
			}
			delete(kept, c)
			for _, r := range rules {
				work = append(work, jumpTarget(r))
			}
		}
		out[table] = kept
	}
	return out
}

// commentOf is the text of a rule's "-m comment --comment" ("" if none),
// quoted or not.
func commentOf(rule string) string {
	_, after, ok := strings.Cut(rule, "--comment ")
	if !ok {
		return ""
	}
	if strings.HasPrefix(after, `"`) {
		text, _, _ := strings.Cut(after[1:], `"`)
		return text
	}
	text, _, _ := strings.Cut(after, " ")
	return text
}

// mentionsService reports whether a rule's comment names Service ns/name
// (or one of its ports, "ns/name:port").
func mentionsService(rule, nsName string) bool {
	for _, w := range strings.Fields(commentOf(rule)) {
		if w == nsName || strings.HasPrefix(w, nsName+":") {
			return true
		}
	}
	return false
}

func referenced(chains map[string][]string, target string) bool {
	for _, rules := range chains {
		for _, r := range rules {
			if jumpTarget(r) == target {
				return true
			}
		}
	}
	return false
}

// rewrite returns a copy of rs with every rule passed through f.
func (rs ruleset) rewrite(f func(string) string) ruleset {
	out := ruleset{}
	for table, chains := range rs {
		out[table] = map[string][]string{}
		for chain, rules := range chains {
			out[table][chain] = nil
			for _, r := range rules {
				out[table][chain] = append(out[table][chain], f(r))
			}
		}
	}
	return out
}
