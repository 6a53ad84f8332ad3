package xtables

import "context"

// Tables is the seam between a mode and one family's iptables tables:
// Runner runs the real binaries, Fake behaves like them in memory. Each
// mode's own Kernel interface is the subset of these methods it uses.
type Tables interface {
	// Restore feeds data to "iptables-restore -w 5 --noflush" (with
	// --counters when counters is true). Each table's COMMIT is atomic:
	// on error, tables not yet committed are unchanged. A rejected input
	// yields a *RestoreError.
	Restore(ctx context.Context, data []byte, counters bool) error
	// Save returns "iptables-save -t table" output.
	Save(ctx context.Context, table string) ([]byte, error)
	// EnsureChain creates chain in table unless it exists.
	EnsureChain(ctx context.Context, table, chain string) error
	// EnsureRule puts rule at pos in chain unless an identical rule is
	// already there; it reports whether it added the rule.
	EnsureRule(ctx context.Context, pos Position, table, chain string, rule ...string) (bool, error)
	// DeleteRule removes every copy of rule from chain; a missing rule or
	// chain is fine.
	DeleteRule(ctx context.Context, table, chain string, rule ...string) error
	// ChainExists reports whether chain exists in table.
	ChainExists(ctx context.Context, table, chain string) (bool, error)
	// DeleteChain flushes and deletes chain; a missing chain is fine.
	DeleteChain(ctx context.Context, table, chain string) error
	// SetSysctl writes a sysctl of the namespace ("net/ipv4/conf/all/...").
	SetSysctl(ctx context.Context, name, value string) error
	// HasRandomFully reports whether MASQUERADE --random-fully works.
	HasRandomFully() bool
}

// Position is where EnsureRule puts a rule.
type Position int

const (
	// Prepend inserts the rule first in its chain (jump rules that must
	// run before anybody else's).
	Prepend Position = iota
	// Append adds the rule last.
	Append
)
