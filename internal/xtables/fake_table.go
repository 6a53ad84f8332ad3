package xtables

import (
	"fmt"
	"slices"
	"strings"
)

// fakeTable is one table of a Fake: its chains and their rules.
type fakeTable struct {
	name   string
	chains map[string][]fakeRule
}

// fakeRule is one rule: its words after "-A chain" (what identifies it)
// and, for Save, its text as given (kproxy writes rules in
// iptables-save's form).
type fakeRule struct {
	words []string
	raw   string
}

func newFakeRule(words []string, raw string) fakeRule {
	if raw == "" {
		raw = joinQuoted(words)
	}
	return fakeRule{words: words, raw: raw}
}

// target is the rule's -j or -g argument, "" for none.
func (r fakeRule) target() string {
	for i := 0; i+1 < len(r.words); i++ {
		if r.words[i] == "-j" || r.words[i] == "--jump" || r.words[i] == "-g" || r.words[i] == "--goto" {
			return r.words[i+1]
		}
	}
	return ""
}

// sets are the ipsets the rule matches.
func (r fakeRule) sets() []string {
	var out []string
	for i := 0; i+1 < len(r.words); i++ {
		if r.words[i] == "--match-set" {
			out = append(out, r.words[i+1])
		}
	}
	return out
}

// builtinTargets may be jumped to without a chain of that name.
var builtinTargets = map[string]bool{"ACCEPT": true, "DROP": true, "REJECT": true, "RETURN": true, "MARK": true,
	"DNAT": true, "SNAT": true, "MASQUERADE": true, "REDIRECT": true}

func newFakeTable(name string) *fakeTable {
	t := &fakeTable{name: name, chains: map[string][]fakeRule{}}
	for _, c := range builtinChains[name] {
		t.chains[c] = nil
	}
	return t
}

func (t *fakeTable) builtin(chain string) bool { return IsBuiltinChain(t.name, chain) }

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{name: t.name, chains: make(map[string][]fakeRule, len(t.chains))}
	for k, v := range t.chains {
		c.chains[k] = slices.Clone(v)
	}
	return c
}

// referrer returns a chain other than chain with a rule jumping to
// chain, "" if none.
func (t *fakeTable) referrer(chain string) string {
	for from, rules := range t.chains {
		for _, r := range rules {
			if r.target() == chain && from != chain {
				return from
			}
		}
	}
	return ""
}

// checkRule rejects a rule jumping to a missing chain or matching a
// missing ipset.
func (t *fakeTable) checkRule(r fakeRule, setExists func(string) bool) error {
	if target := r.target(); target != "" && !builtinTargets[target] {
		if _, ok := t.chains[target]; !ok {
			return fmt.Errorf("jump to missing chain %s", target)
		}
	}
	for _, s := range r.sets() {
		if setExists != nil && !setExists(s) {
			return fmt.Errorf("set %s doesn't exist", s)
		}
	}
	return nil
}

// deleteChain deletes an empty, unreferenced user chain.
func (t *fakeTable) deleteChain(chain string) error {
	_, exists := t.chains[chain]
	switch {
	case !exists:
		return fmt.Errorf("chain %s does not exist", chain)
	case t.builtin(chain):
		return fmt.Errorf("cannot delete built-in chain %s", chain)
	case len(t.chains[chain]) > 0:
		return fmt.Errorf("chain %s is not empty", chain)
	}
	if from := t.referrer(chain); from != "" {
		return fmt.Errorf("chain %s is still referenced from %s", chain, from)
	}
	delete(t.chains, chain)
	return nil
}

// save prints the table as iptables-save does: built-in chains in the
// kernel's order, then user chains by name; rules in order.
func (t *fakeTable) save() string {
	var user []string
	for c := range t.chains {
		if !t.builtin(c) {
			user = append(user, c)
		}
	}
	slices.Sort(user)
	var b strings.Builder
	b.WriteString("*" + t.name + "\n")
	for _, c := range builtinChains[t.name] {
		fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", c)
	}
	for _, c := range user {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, c := range append(slices.Clone(builtinChains[t.name]), user...) {
		for _, r := range t.chains[c] {
			b.WriteString("-A " + c + " " + r.raw + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
