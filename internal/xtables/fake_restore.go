package xtables

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Restore implements Tables.
func (f *Fake) Restore(_ context.Context, data []byte, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("Restore"); err != nil {
		return &RestoreError{Output: err.Error(), Err: err}
	}
	tables, err := ParseRestore(string(data))
	if err != nil {
		return NewRestoreError(data, err.Error(), err)
	}
	for _, in := range tables {
		cur, ok := f.tables[in.Name]
		if !ok {
			return &RestoreError{Output: "unknown table " + in.Name, Err: errors.New("unknown table")}
		}
		next := cur.clone()
		for _, c := range in.Chains {
			if !next.builtin(c) {
				next.chains[c] = nil // declaring creates or flushes
			}
		}
		for _, l := range in.Lines {
			if err := next.apply(l.Words, l.Raw, f.SetExists); err != nil {
				msg := fmt.Sprintf("iptables-restore: line %d failed: %v", l.LineNo, err)
				return NewRestoreError(data, msg, errors.New("exit status 1"))
			}
		}
		f.tables[in.Name] = next // COMMIT
	}
	f.Restores = append(f.Restores, string(data))
	return nil
}

// apply runs one command line of restore input (its words and text).
func (t *fakeTable) apply(w []string, raw string, setExists func(string) bool) error {
	if len(w) == 1 && w[0] == "-S" {
		return nil // a listing: changes nothing
	}
	if len(w) < 2 {
		return fmt.Errorf("bad line %q", strings.Join(w, " "))
	}
	cmd, chain, rest := w[0], w[1], w[2:]
	_, exists := t.chains[chain]
	if !exists && cmd != "-N" {
		return fmt.Errorf("chain %s does not exist", chain)
	}
	switch cmd {
	case "-A":
		// The rule's own text: the line without "-A CHAIN ".
		text := ""
		if f := strings.SplitN(raw, " ", 3); len(f) == 3 {
			text = f[2]
		}
		return t.insert(chain, len(t.chains[chain]), newFakeRule(rest, text), setExists)
	case "-I":
		pos := 0
		if len(rest) > 0 {
			if n, err := strconv.Atoi(rest[0]); err == nil {
				pos, rest = n-1, rest[1:]
			}
		}
		return t.insert(chain, pos, newFakeRule(rest, ""), setExists)
	case "-D":
		i := slices.IndexFunc(t.chains[chain], func(r fakeRule) bool { return slices.Equal(r.words, rest) })
		if i < 0 {
			return fmt.Errorf("bad rule (does a matching rule exist in that chain?)")
		}
		t.chains[chain] = slices.Delete(t.chains[chain], i, i+1)
	case "-X":
		return t.deleteChain(chain)
	case "-F":
		t.chains[chain] = nil
	case "-N":
		if exists {
			return fmt.Errorf("chain %s already exists", chain)
		}
		t.chains[chain] = nil
	default:
		return fmt.Errorf("unsupported command %s", cmd)
	}
	return nil
}

// insert puts r at pos (0-based) in chain.
func (t *fakeTable) insert(chain string, pos int, r fakeRule, setExists func(string) bool) error {
	if pos < 0 || pos > len(t.chains[chain]) {
		return fmt.Errorf("index of insertion too big")
	}
	if err := t.checkRule(r, setExists); err != nil {
		return err
	}
	t.chains[chain] = slices.Insert(t.chains[chain], pos, r)
	return nil
}
