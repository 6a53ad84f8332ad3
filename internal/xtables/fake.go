package xtables

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Fake is Tables in memory, behaving like iptables for what kproxy's modes
// do: restore input is parsed and applied table by table, each table
// all-or-nothing (a bad line leaves that table and the following ones
// untouched, tables before it committed); declaring a user chain creates
// or flushes it, a built-in one is left alone; a rule may only go into an
// existing chain, jump to an existing chain and match an existing ipset;
// a chain may only be deleted when empty and unreferenced. Save dumps
// deterministically (built-in chains in the kernel's order, then user
// chains by name). FailOn injects faults.
type Fake struct {
	mu     sync.Mutex
	tables map[string]*fakeTable
	// FailOn, when set, is asked before each operation ("Restore", "Save
	// nat", "EnsureRule nat POSTROUTING", "DeleteChain nat KUBE-X",
	// "SetSysctl net/...", ...): a non-nil answer fails the operation
	// without any effect (Restore as iptables-restore rejecting its input).
	// FailOnce builds a common one.
	FailOn func(op string) error
	// SetExists, when set, says whether an ipset exists: a rule matching
	// a missing set is rejected. Nil: every set exists.
	SetExists func(name string) bool
	// NoRandomFully makes HasRandomFully report false.
	NoRandomFully bool
	// Restores records every successful restore input.
	Restores []string
	// Sysctls records SetSysctl.
	Sysctls map[string]string
}

var _ Tables = (*Fake)(nil)

// builtinChains are the built-in chains of each table, in the kernel's
// order.
var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
}

// IsBuiltinChain reports whether chain is one of table's built-in chains.
func IsBuiltinChain(table, chain string) bool { return slices.Contains(builtinChains[table], chain) }

// NewFake returns a Fake with the filter, nat and mangle tables and their
// empty built-in chains.
func NewFake() *Fake {
	f := &Fake{tables: map[string]*fakeTable{}, Sysctls: map[string]string{}}
	for t := range builtinChains {
		f.tables[t] = newFakeTable(t)
	}
	return f
}

// FailOnce returns a FailOn that fails the first operation named op
// (exactly, or its first words: "EnsureRule" matches "EnsureRule nat
// OUTPUT") with err, and nothing after.
func FailOnce(op string, err error) func(string) error {
	done := false
	return func(o string) error {
		if done || (o != op && !strings.HasPrefix(o, op+" ")) {
			return nil
		}
		done = true
		return err
	}
}

// Injected asks FailOn about op: the error op must fail with, if any.
// Fakes of other kernel facilities that embed Fake share its FailOn
// through it.
func (f *Fake) Injected(op string) error {
	if f.FailOn == nil {
		return nil
	}
	if err := f.FailOn(op); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// table returns a table for op, or the error iptables gives for a table
// it does not know.
func (f *Fake) table(name string) (*fakeTable, error) {
	t, ok := f.tables[name]
	if !ok {
		return nil, fmt.Errorf("iptables: table %s does not exist: %w", name, syscall.ENOENT)
	}
	return t, nil
}

// Save implements Tables.
func (f *Fake) Save(_ context.Context, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("Save " + table); err != nil {
		return nil, err
	}
	t, err := f.table(table)
	if err != nil {
		return nil, err
	}
	return []byte(t.save()), nil
}

// Dump returns every table as iptables-save prints it, tables by name.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.tables)) {
		b.WriteString(f.tables[name].save())
	}
	return b.String()
}

// Chain returns the rules of one chain (without "-A chain"), nil if it
// does not exist.
func (f *Fake) Chain(table, chain string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	if t == nil {
		return nil
	}
	var out []string
	for _, r := range t.chains[chain] {
		out = append(out, r.raw)
	}
	return out
}

// Flush empties a table, as a firewall reload would (built-in chains
// stay, every other chain goes).
func (f *Fake) Flush(table string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[table] = newFakeTable(table)
}

// UsesSet reports whether a rule matches ipset name (which then cannot
// be destroyed).
func (f *Fake) UsesSet(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tables {
		for _, rules := range t.chains {
			for _, r := range rules {
				if slices.Contains(r.sets(), name) {
					return true
				}
			}
		}
	}
	return false
}

// SetSysctl implements Tables.
func (f *Fake) SetSysctl(_ context.Context, name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("SetSysctl " + name); err != nil {
		return err
	}
	f.Sysctls[name] = value
	return nil
}

// HasRandomFully implements Tables.
func (f *Fake) HasRandomFully() bool { return !f.NoRandomFully }
