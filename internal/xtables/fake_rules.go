package xtables

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// EnsureChain implements Tables.
func (f *Fake) EnsureChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("EnsureChain " + table + " " + chain); err != nil {
		return err
	}
	t, err := f.table(table)
	if err != nil {
		return err
	}
	if _, ok := t.chains[chain]; !ok {
		t.chains[chain] = nil
	}
	return nil
}

// EnsureRule implements Tables.
func (f *Fake) EnsureRule(_ context.Context, pos Position, table, chain string, rule ...string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("EnsureRule " + table + " " + chain); err != nil {
		return false, err
	}
	t, err := f.table(table)
	if err != nil {
		return false, err
	}
	rules, ok := t.chains[chain]
	if !ok {
		return false, fmt.Errorf("iptables: chain %s/%s does not exist", table, chain)
	}
	if slices.ContainsFunc(rules, func(r fakeRule) bool { return slices.Equal(r.words, rule) }) {
		return false, nil
	}
	at := 0
	if pos == Append {
		at = len(rules)
	}
	if err := t.insert(chain, at, newFakeRule(slices.Clone(rule), ""), f.SetExists); err != nil {
		return false, fmt.Errorf("iptables: %s/%s: %w", table, chain, err)
	}
	return true, nil
}

// DeleteRule implements Tables.
func (f *Fake) DeleteRule(_ context.Context, table, chain string, rule ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("DeleteRule " + table + " " + chain); err != nil {
		return err
	}
	if t := f.tables[table]; t != nil && t.chains[chain] != nil {
		t.chains[chain] = slices.DeleteFunc(t.chains[chain], func(r fakeRule) bool { return slices.Equal(r.words, rule) })
	}
	return nil
}

// ChainExists implements Tables.
func (f *Fake) ChainExists(_ context.Context, table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("ChainExists " + table + " " + chain); err != nil {
		return false, err
	}
	t := f.tables[table]
	if t == nil {
		return false, nil
	}
	_, ok := t.chains[chain]
	return ok, nil
}

// DeleteChain implements Tables.
func (f *Fake) DeleteChain(_ context.Context, table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.Injected("DeleteChain " + table + " " + chain); err != nil {
		return err
	}
	t := f.tables[table]
	if t == nil {
		return nil
	}
	if _, ok := t.chains[chain]; !ok {
		return nil
	}
	if from := t.referrer(chain); from != "" {
		return fmt.Errorf("iptables: chain %s/%s is still referenced from %s", table, chain, strings.TrimSpace(from))
	}
	t.chains[chain] = nil
	return t.deleteChain(chain)
}
