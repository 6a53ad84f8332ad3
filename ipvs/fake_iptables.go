package ipvs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Targets iptables knows without a chain of that name.
var builtinTargets = map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true,
	"MARK": true, "MASQUERADE": true, "DNAT": true, "SNAT": true}

// Restore applies iptables-restore --noflush input like the kernel does:
// each table is checked as a whole and committed at its COMMIT line; an
// error leaves that table (and all later ones) unchanged.
func (f *Fake) Restore(ctx context.Context, data []byte, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Restore"); err != nil {
		return err
	}
	var cur *fakeTable
	table := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		fail := func(format string, a ...any) error {
			return fmt.Errorf("iptables-restore: line %d (%q): %s: %w", i+1, line, fmt.Sprintf(format, a...), syscall.EINVAL)
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			t, ok := f.tables[table]
			if !ok {
				return fail("unknown table")
			}
			cur = &fakeTable{chains: map[string][]string{}}
			for c, r := range t.chains {
				cur.chains[c] = slices.Clone(r)
			}
		case cur == nil:
			return fail("no table")
		case line == "COMMIT":
			f.tables[table] = cur
			f.done("Restore")
			cur = nil
		case strings.HasPrefix(line, ":"):
			name := strings.Fields(line[1:])[0]
			if !slices.Contains(builtinChains[table], name) {
				cur.chains[name] = nil // create, or flush (--noflush keeps others)
			}
		default:
			if err := f.applyCommand(cur, table, line); err != nil {
				return fail("%v", err)
			}
		}
	}
	if cur != nil {
		return fmt.Errorf("iptables-restore: table %s without COMMIT: %w", table, syscall.EINVAL)
	}
	return nil
}

func (f *Fake) applyCommand(t *fakeTable, table, line string) error {
	args := splitArgs(line)
	if len(args) < 2 {
		return fmt.Errorf("short command")
	}
	cmd, chain, rest := args[0], args[1], args[2:]
	if _, ok := t.chains[chain]; !ok {
		return fmt.Errorf("no chain %s", chain)
	}
	switch cmd {
	case "-X":
		for c, rules := range t.chains {
			for _, r := range rules {
				if targetOf(r) == chain {
					return fmt.Errorf("chain %s is referenced from %s", chain, c)
				}
			}
		}
		if len(t.chains[chain]) > 0 {
			return fmt.Errorf("chain %s is not empty", chain)
		}
		delete(t.chains, chain)
		return nil
	case "-A", "-I", "-D":
	default:
		return fmt.Errorf("unknown command %s", cmd)
	}
	pos := 0
	if cmd == "-I" && len(rest) > 0 {
		if n, err := strconv.Atoi(rest[0]); err == nil {
			pos, rest = n-1, rest[1:]
		}
	}
	rule := joinArgs(rest)
	if cmd == "-D" {
		i := slices.Index(t.chains[chain], rule)
		if i < 0 {
			return fmt.Errorf("bad rule (does a matching rule exist in that chain?)")
		}
		t.chains[chain] = slices.Delete(t.chains[chain], i, i+1)
		return nil
	}
	tgt := targetOf(rule)
	if tgt == "" {
		return fmt.Errorf("rule without target")
	}
	if _, ok := t.chains[tgt]; !ok && !builtinTargets[tgt] {
		return fmt.Errorf("unknown target %s", tgt)
	}
	for s := range setsOfRule(rule) {
		if _, ok := f.sets[s]; !ok {
			return fmt.Errorf("set %s doesn't exist", s)
		}
	}
	if cmd == "-A" {
		t.chains[chain] = append(t.chains[chain], rule)
	} else {
		if pos < 0 || pos > len(t.chains[chain]) {
			return fmt.Errorf("index of insertion too big")
		}
		t.chains[chain] = slices.Insert(t.chains[chain], pos, rule)
	}
	return nil
}

// Save returns the table as iptables-save prints it.
func (f *Fake) Save(ctx context.Context, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("Save " + table); err != nil {
		return nil, err
	}
	if _, ok := f.tables[table]; !ok {
		return nil, fmt.Errorf("iptables-save: table %s: %w", table, syscall.ENOENT)
	}
	return []byte(f.saveLocked(table)), nil
}

func (f *Fake) saveLocked(table string) string {
	t := f.tables[table]
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", table)
	builtin := builtinChains[table]
	var user []string
	for c := range maps.Keys(t.chains) {
		if !slices.Contains(builtin, c) {
			user = append(user, c)
		}
	}
	slices.Sort(user)
	for _, c := range builtin {
		fmt.Fprintf(&b, ":%s ACCEPT [0:0]\n", c)
	}
	for _, c := range user {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, c := range append(slices.Clone(builtin), user...) {
		for _, r := range t.chains[c] {
			fmt.Fprintf(&b, "-A %s %s\n", c, r)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// splitArgs splits a rule like a shell would for iptables-restore:
// whitespace-separated, double quotes group.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, has := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQ, has = !inQ, true
		case (r == ' ' || r == '\t') && !inQ:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	return out
}

// joinArgs is the inverse of splitArgs, quoting as iptables-save does.
func joinArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t") || a == "" {
			a = `"` + a + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func targetOf(rule string) string {
	args := splitArgs(rule)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}

func setsOfRule(rule string) map[string]bool {
	out := map[string]bool{}
	args := splitArgs(rule)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--match-set" {
			out[args[i+1]] = true
		}
	}
	return out
}
