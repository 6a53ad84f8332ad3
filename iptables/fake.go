package iptables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/kproxy/kproxy/internal/xtables"
)

// Fake is an in-memory Kernel that behaves like iptables for what kproxy
// does: restore input is parsed and applied table by table, each table
// all-or-nothing (a bad line leaves that table and the following ones
// untouched, tables before it committed); a rule may only append to or
// jump to an existing chain; a chain may only be deleted when nothing
// jumps to it. Save dumps deterministically. Faults can be injected.
type Fake struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	// FailRestore, when set, is called before each restore; a non-nil
	// error fails it as if iptables-restore had rejected the input.
	FailRestore func(data []byte) error
	// NoRandomFully makes HasRandomFully report false.
	NoRandomFully bool
	// Restores records every successful restore input.
	Restores []string
	Sysctls  map[string]string
}

type fakeTable struct {
	chains map[string][]fakeRule
}

// fakeRule is one rule: its words after "-A chain" and, for Save, its text
// as it was given (kproxy writes rules in iptables-save's form).
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

var builtinChains = map[string][]string{
	tableFilter: {"INPUT", "FORWARD", "OUTPUT"},
	tableNAT:    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	tableMangle: {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
}

var _ Kernel = (*Fake)(nil)

// NewFake returns a Fake with empty built-in chains.
func NewFake() *Fake {
	f := &Fake{tables: map[string]*fakeTable{}, Sysctls: map[string]string{}}
	for t, cs := range builtinChains {
		ft := &fakeTable{chains: map[string][]fakeRule{}}
		for _, c := range cs {
			ft.chains[c] = nil
		}
		f.tables[t] = ft
	}
	return f
}

func isBuiltin(table, chain string) bool { return slices.Contains(builtinChains[table], chain) }

func (t *fakeTable) clone() *fakeTable {
	c := &fakeTable{chains: make(map[string][]fakeRule, len(t.chains))}
	for k, v := range t.chains {
		c.chains[k] = slices.Clone(v)
	}
	return c
}

func (t *fakeTable) referenced(chain string) bool {
	for _, rules := range t.chains {
		for _, fr := range rules {
			r := fr.words
			if i := slices.Index(r, "-j"); i >= 0 && i+1 < len(r) && r[i+1] == chain {
				return true
			}
		}
	}
	return false
}

// checkJump rejects a jump to a chain that does not exist (targets in
// upper case that are not chains are iptables targets).
func (t *fakeTable) checkJump(rule []string) error {
	i := slices.Index(rule, "-j")
	if i < 0 || i+1 >= len(rule) {
		return nil
	}
	target := rule[i+1]
	if _, ok := t.chains[target]; ok {
		return nil
	}
	switch target {
	case "ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "DNAT", "SNAT", "MASQUERADE":
		return nil
	}
	return fmt.Errorf("jump to missing chain %s", target)
}

// Restore implements Kernel.
func (f *Fake) Restore(_ context.Context, data []byte, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailRestore != nil {
		if err := f.FailRestore(data); err != nil {
			return &xtables.RestoreError{Output: err.Error(), Err: err}
		}
	}
	tables, err := parseRestore(string(data))
	if err != nil {
		return xtables.NewRestoreError(data, err.Error(), err)
	}
	for _, in := range tables {
		cur, ok := f.tables[in.name]
		if !ok {
			return &xtables.RestoreError{Output: "unknown table " + in.name, Err: errors.New("unknown table")}
		}
		next := cur.clone()
		for _, c := range in.chains {
			next.chains[c] = nil // declaring flushes (or creates)
		}
		for _, l := range in.lines {
			if err := next.apply(in.name, l.words, l.raw); err != nil {
				msg := fmt.Sprintf("iptables-restore: line %d failed: %v", l.lineNo, err)
				return xtables.NewRestoreError(data, msg, errors.New("exit status 1"))
			}
		}
		f.tables[in.name] = next // COMMIT
	}
	f.Restores = append(f.Restores, string(data))
	return nil
}

func (t *fakeTable) apply(table string, w []string, raw string) error {
	if len(w) == 1 && w[0] == "-S" {
		return nil // a listing: changes nothing
	}
	if len(w) < 2 {
		return fmt.Errorf("bad line %q", strings.Join(w, " "))
	}
	chain := w[1]
	_, exists := t.chains[chain]
	switch w[0] {
	case "-A", "-I":
		if !exists {
			return fmt.Errorf("chain %s does not exist", chain)
		}
		if err := t.checkJump(w[2:]); err != nil {
			return err
		}
		// The rule's own text: the line without "-A CHAIN ".
		rest := ""
		if f := strings.SplitN(raw, " ", 3); len(f) == 3 && w[0] == "-A" {
			rest = f[2]
		}
		r := newFakeRule(w[2:], rest)
		if w[0] == "-A" {
			t.chains[chain] = append(t.chains[chain], r)
		} else {
			t.chains[chain] = append([]fakeRule{r}, t.chains[chain]...)
		}
	case "-X":
		switch {
		case !exists:
			return fmt.Errorf("chain %s does not exist", chain)
		case isBuiltin(table, chain):
			return fmt.Errorf("cannot delete built-in chain %s", chain)
		case len(t.chains[chain]) > 0:
			return fmt.Errorf("chain %s is not empty", chain)
		case t.referenced(chain):
			return fmt.Errorf("chain %s is still referenced", chain)
		}
		delete(t.chains, chain)
	case "-F":
		if !exists {
			return fmt.Errorf("chain %s does not exist", chain)
		}
		t.chains[chain] = nil
	case "-N":
		if exists {
			return fmt.Errorf("chain %s already exists", chain)
		}
		t.chains[chain] = nil
	default:
		return fmt.Errorf("unsupported command %s", w[0])
	}
	return nil
}

// Save implements Kernel: chains sorted (built-ins first), rules in order.
func (f *Fake) Save(_ context.Context, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("unknown table %s", table)
	}
	var b strings.Builder
	b.WriteString("*" + table + "\n")
	names := make([]string, 0, len(t.chains))
	for c := range t.chains {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		bi, bj := isBuiltin(table, names[i]), isBuiltin(table, names[j])
		if bi != bj {
			return bi
		}
		return names[i] < names[j]
	})
	for _, c := range names {
		policy := "-"
		if isBuiltin(table, c) {
			policy = "ACCEPT"
		}
		fmt.Fprintf(&b, ":%s %s [0:0]\n", c, policy)
	}
	for _, c := range names {
		for _, r := range t.chains[c] {
			b.WriteString("-A " + c + " " + r.raw + "\n")
		}
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String()), nil
}

func joinQuoted(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if strings.ContainsAny(w, " ") || w == "" {
			w = `"` + w + `"`
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

// EnsureChain implements Kernel.
func (f *Fake) EnsureChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[table]
	if !ok {
		return fmt.Errorf("unknown table %s", table)
	}
	if _, ok := t.chains[chain]; !ok {
		t.chains[chain] = nil
	}
	return nil
}

// EnsureRule implements Kernel.
func (f *Fake) EnsureRule(_ context.Context, pos xtables.Position, table, chain string, rule ...string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tables[table]
	if !ok {
		return false, fmt.Errorf("unknown table %s", table)
	}
	rules, ok := t.chains[chain]
	if !ok {
		return false, fmt.Errorf("chain %s/%s does not exist", table, chain)
	}
	for _, r := range rules {
		if slices.Equal(r.words, rule) {
			return false, nil
		}
	}
	if err := t.checkJump(rule); err != nil {
		return false, err
	}
	r := newFakeRule(slices.Clone(rule), "")
	if pos == xtables.Append {
		t.chains[chain] = append(rules, r)
	} else {
		t.chains[chain] = append([]fakeRule{r}, rules...)
	}
	return true, nil
}

// DeleteRule implements Kernel.
func (f *Fake) DeleteRule(_ context.Context, table, chain string, rule ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return nil
	}
	rules := t.chains[chain]
	for i, r := range rules {
		if slices.Equal(r.words, rule) {
			t.chains[chain] = slices.Delete(rules, i, i+1)
			return nil
		}
	}
	return nil
}

// ChainExists implements Kernel.
func (f *Fake) ChainExists(_ context.Context, table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return false, nil
	}
	_, ok := t.chains[chain]
	return ok, nil
}

// DeleteChain implements Kernel.
func (f *Fake) DeleteChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return nil
	}
	if _, ok := t.chains[chain]; !ok {
		return nil
	}
	if t.referenced(chain) {
		return fmt.Errorf("chain %s/%s is still referenced", table, chain)
	}
	delete(t.chains, chain)
	return nil
}

// SetSysctl implements Kernel.
func (f *Fake) SetSysctl(_ context.Context, name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Sysctls[name] = value
	return nil
}

// HasRandomFully implements Kernel.
func (f *Fake) HasRandomFully() bool { return !f.NoRandomFully }

// Flush empties a table, as a firewall reload would (built-in chains
// stay, every other chain goes).
func (f *Fake) Flush(table string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := &fakeTable{chains: map[string][]fakeRule{}}
	for _, c := range builtinChains[table] {
		ft.chains[c] = nil
	}
	f.tables[table] = ft
}
