package userspace

import (
	"context"
	"fmt"
	"github.com/kproxy/kproxy/internal/xtables"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Fake is an in-memory Kernel that behaves like iptables for what this mode
// does: restore is all-or-nothing, a rule may only jump to a chain that
// exists, a chain that is referenced cannot be deleted. Fail makes the next
// call of an operation fail, to test error paths.
type Fake struct {
	mu     sync.Mutex
	tables map[string]map[string][]string
	fail   map[string]error
	// Restores counts successful Restore calls.
	Restores int
}

var _ Kernel = (*Fake)(nil)

var builtinChains = map[string][]string{
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
}

// builtinTargets may be jumped to without a chain of that name.
var builtinTargets = map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "REDIRECT": true, "DNAT": true, "MASQUERADE": true}

// NewFake returns a Fake with empty builtin chains.
func NewFake() *Fake {
	f := &Fake{tables: map[string]map[string][]string{}, fail: map[string]error{}}
	for t, chains := range builtinChains {
		f.tables[t] = map[string][]string{}
		for _, c := range chains {
			f.tables[t][c] = nil
		}
	}
	return f
}

// Fail makes the next call of op ("Restore", "EnsureRule", "DeleteRule",
// "DeleteChain") return err.
func (f *Fake) Fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = err
}

func (f *Fake) injected(op string) error {
	err := f.fail[op]
	delete(f.fail, op)
	return err
}

func cloneTables(in map[string]map[string][]string) map[string]map[string][]string {
	out := make(map[string]map[string][]string, len(in))
	for t, chains := range in {
		out[t] = make(map[string][]string, len(chains))
		for c, rules := range chains {
			out[t][c] = slices.Clone(rules)
		}
	}
	return out
}

// Restore implements Kernel, for the subset of the format this mode writes.
func (f *Fake) Restore(_ context.Context, data []byte, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("Restore"); err != nil {
		return err
	}
	next := cloneTables(f.tables)
	var table map[string][]string
	for i, line := range strings.Split(string(data), "\n") {
		bad := func(why string) error {
			return fmt.Errorf("iptables-restore: line %d failed: %s: %q", i+1, why, line)
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = next[line[1:]]
			if table == nil {
				return bad("unknown table")
			}
		case table == nil:
			return bad("no table")
		case line == "COMMIT":
			if err := checkJumps(table); err != nil {
				return bad(err.Error())
			}
			table = nil
		case strings.HasPrefix(line, ":"):
			chain, _, _ := strings.Cut(line[1:], " ")
			table[chain] = nil // declaring a chain creates or flushes it
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[3:], " ")
			if _, ok := table[chain]; !ok {
				return bad("no chain " + chain)
			}
			table[chain] = append(table[chain], rule)
		default:
			return bad("unsupported line")
		}
	}
	if table != nil {
		return fmt.Errorf("iptables-restore: missing COMMIT")
	}
	f.tables = next
	f.Restores++
	return nil
}

func jumpTarget(rule string) string {
	_, after, ok := strings.Cut(rule, "-j ")
	if !ok {
		return ""
	}
	target, _, _ := strings.Cut(after, " ")
	return target
}

func checkJumps(table map[string][]string) error {
	for _, rules := range table {
		for _, r := range rules {
			if t := jumpTarget(r); t != "" && !builtinTargets[t] {
				if _, ok := table[t]; !ok {
					return fmt.Errorf("jump to missing chain %s", t)
				}
			}
		}
	}
	return nil
}

// EnsureRule implements Kernel.
func (f *Fake) EnsureRule(_ context.Context, _ xtables.Position, table, chain string, rule ...string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("EnsureRule"); err != nil {
		return false, err
	}
	chains := f.tables[table]
	r := strings.Join(rule, " ")
	if _, ok := chains[chain]; !ok {
		return false, fmt.Errorf("iptables: chain %s/%s does not exist", table, chain)
	}
	if t := jumpTarget(r); t != "" && !builtinTargets[t] {
		if _, ok := chains[t]; !ok {
			return false, fmt.Errorf("iptables: jump to missing chain %s/%s", table, t)
		}
	}
	if slices.Contains(chains[chain], r) {
		return false, nil
	}
	chains[chain] = append(chains[chain], r)
	return true, nil
}

// DeleteRule implements Kernel.
func (f *Fake) DeleteRule(_ context.Context, table, chain string, rule ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DeleteRule"); err != nil {
		return err
	}
	r := strings.Join(rule, " ")
	if chains := f.tables[table]; chains != nil {
		chains[chain] = slices.DeleteFunc(chains[chain], func(s string) bool { return s == r })
	}
	return nil
}

// DeleteChain implements Kernel.
func (f *Fake) DeleteChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DeleteChain"); err != nil {
		return err
	}
	chains := f.tables[table]
	if _, ok := chains[chain]; !ok {
		return nil
	}
	for c, rules := range chains {
		for _, r := range rules {
			if jumpTarget(r) == chain && c != chain {
				return fmt.Errorf("iptables: chain %s/%s is still referenced from %s", table, chain, c)
			}
		}
	}
	delete(chains, chain)
	return nil
}

// Dump returns the tables in iptables-save order: tables and chains sorted,
// rules in order.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	tables := make([]string, 0, len(f.tables))
	for t := range f.tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		fmt.Fprintf(&b, "*%s\n", t)
		chains := make([]string, 0, len(f.tables[t]))
		for c := range f.tables[t] {
			chains = append(chains, c)
		}
		sort.Strings(chains)
		for _, c := range chains {
			fmt.Fprintf(&b, ":%s\n", c)
		}
		for _, c := range chains {
			for _, r := range f.tables[t][c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, r)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// Chain returns the rules of one chain, nil if it does not exist.
func (f *Fake) Chain(table, chain string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tables[table][chain])
}
