package parity

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ruleset is one family's rules of one proxy, in any mode: table → chain
// → its rules. Declarations are kept with their rules (an empty chain has
// an entry with no rules); counters are dropped, since they count
// packets, not rules. What a "table", "chain" and "rule" are is the
// mode's (see layout).
type ruleset map[string]map[string][]string

// empty reports whether rs has no chain at all.
func (rs ruleset) empty() bool {
	for _, chains := range rs {
		if len(chains) > 0 {
			return false
		}
	}
	return true
}

// layout is how one mode's rules are organized and compared.
type layout struct {
	// tables are the tables compared, in this order.
	tables []string
	// unordered reports a chain whose order the proxies do not define:
	// it is compared as a multiset.
	unordered func(table, chain string) bool
	// check is the mode's own check of a chain compared as a multiset
	// ("" when it passes); may be nil.
	check func(table, chain string, up, kp []string) string
	// jumps lists the chains a rule leads to.
	jumps func(rule string) []string
	// serviceChain reports a chain that belongs to one service port or
	// endpoint, which goes when nothing leads to it any more.
	serviceChain func(chain string) bool
	// mentionsService reports whether a rule (or a chain's name) belongs to
	// Service ns/name.
	mentionsService func(rule, nsName string) bool
}

// diffRules compares upstream's and kproxy's rules table by table and
// chain by chain and describes every difference; "" when they agree.
func diffRules(up, kp ruleset, l layout) string {
	var b strings.Builder
	for _, table := range l.tables {
		u, k := up[table], kp[table]
		for _, chain := range unionKeys(u, k) {
			ur, uok := u[chain]
			kr, kok := k[chain]
			switch {
			case !kok:
				fmt.Fprintf(&b, "%s %s: only upstream has this chain:\n%s", table, chain, indent(ur, "  "))
			case !uok:
				fmt.Fprintf(&b, "%s %s: only kproxy has this chain:\n%s", table, chain, indent(kr, "  "))
			case l.unordered(table, chain):
				if d := diffMultiset(ur, kr); d != "" {
					fmt.Fprintf(&b, "%s %s (compared as a set):\n%s", table, chain, d)
				}
				if l.check != nil {
					b.WriteString(l.check(table, chain, ur, kr))
				}
			case !slices.Equal(ur, kr):
				fmt.Fprintf(&b, "%s %s (in order):\n%s%s", table, chain, indent(ur, "  upstream: "), indent(kr, "  kproxy:   "))
			}
		}
	}
	return b.String()
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

// without returns a copy of rs minus the whole chains dropChain selects,
// the rules dropRule selects, and the service chains (layout.serviceChain)
// that only the dropped rules led to, transitively. Other chains are kept
// even when unreferenced, so a stale chain is still seen.
func (rs ruleset) without(l layout, dropChain func(table, chain string, rules []string) bool, dropRule func(table, chain, rule string) bool) ruleset {
	out := ruleset{}
	for table, chains := range rs {
		kept := map[string][]string{}
		var work []string
		for chain, rules := range chains {
			if dropChain(table, chain, rules) {
				for _, r := range rules {
					work = append(work, l.jumps(r)...)
				}
				continue
			}
			kept[chain] = nil
			for _, r := range rules {
				if dropRule(table, chain, r) {
					work = append(work, l.jumps(r)...)
					continue
				}
				kept[chain] = append(kept[chain], r)
			}
		}
		for len(work) > 0 {
			c := work[len(work)-1]
			work = work[:len(work)-1]
			rules, ok := kept[c]
			if !ok || !l.serviceChain(c) || referenced(l, kept, c) {
				continue
			}
			delete(kept, c)
			for _, r := range rules {
				work = append(work, l.jumps(r)...)
			}
		}
		out[table] = kept
	}
	return out
}

func referenced(l layout, chains map[string][]string, target string) bool {
	for _, rules := range chains {
		for _, r := range rules {
			if slices.Contains(l.jumps(r), target) {
				return true
			}
		}
	}
	return false
}

// rewrite returns a copy of rs with every rule passed through f.
func (rs ruleset) rewrite(f func(string) string) ruleset {
	return rs.rewriteChains(func(rules []string) []string {
		out := make([]string, len(rules))
		for i, r := range rules {
			out[i] = f(r)
		}
		return out
	})
}

// rewriteChains returns a copy of rs with every chain's rules passed
// through f.
func (rs ruleset) rewriteChains(f func([]string) []string) ruleset {
	out := ruleset{}
	for table, chains := range rs {
		out[table] = map[string][]string{}
		for chain, rules := range chains {
			out[table][chain] = f(rules)
		}
	}
	return out
}
