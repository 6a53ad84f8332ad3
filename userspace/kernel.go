package userspace

import (
	"context"

	"github.com/kproxy/kproxy/internal/xtables"
)

// Kernel is the seam between the proxier and iptables: the part of
// xtables.Tables this mode uses. xtables.Runner runs the real binaries;
// Fake behaves like them in memory.
type Kernel interface {
	// Restore feeds data to iptables-restore (see xtables.Tables).
	Restore(ctx context.Context, data []byte, counters bool) error
	// EnsureRule adds rule at pos in chain unless an identical rule is
	// there.
	EnsureRule(ctx context.Context, pos xtables.Position, table, chain string, rule ...string) (bool, error)
	// DeleteRule removes rule from chain; a missing rule or chain is fine.
	DeleteRule(ctx context.Context, table, chain string, rule ...string) error
	// DeleteChain flushes and deletes chain; a missing chain is fine.
	DeleteChain(ctx context.Context, table, chain string) error
	// Save returns table as iptables-save prints it.
	Save(ctx context.Context, table string) ([]byte, error)
}

var _ Kernel = (*xtables.Runner)(nil)

// Fake is the in-memory Kernel the modes share.
type Fake = xtables.Fake

// NewFake returns an empty Fake (see xtables.NewFake).
func NewFake() *Fake { return xtables.NewFake() }
