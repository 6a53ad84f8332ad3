package iptables

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Kernel is the seam between the proxier and iptables: everything the
// iptables mode does to the kernel goes through it. ExecKernel runs the
// real binaries; Fake behaves like them in memory.
type Kernel interface {
	// Restore feeds data to "iptables-restore -w --noflush" (with
	// --counters when counters is true). Each table's COMMIT is atomic: on
	// error, tables not yet committed are unchanged. A rejected input
	// yields a *RestoreError.
	Restore(ctx context.Context, data []byte, counters bool) error
	// Save returns "iptables-save -t table" output.
	Save(ctx context.Context, table string) ([]byte, error)
	// EnsureChain creates chain in table unless it exists.
	EnsureChain(ctx context.Context, table, chain string) error
	// EnsureRule inserts rule at the top of chain unless an identical rule
	// is already there; it reports whether it inserted.
	EnsureRule(ctx context.Context, table, chain string, rule ...string) (bool, error)
	// DeleteRule removes rule from chain; a missing rule or chain is fine.
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

// RestoreError is iptables-restore rejecting its input.
type RestoreError struct {
	// Line is the 1-based input line iptables-restore named, 0 if none.
	Line   int
	Output string
	Err    error
}

func (e *RestoreError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("iptables-restore failed at input line %d: %v: %s", e.Line, e.Err, e.Output)
	}
	return fmt.Sprintf("iptables-restore failed: %v: %s", e.Err, e.Output)
}

func (e *RestoreError) Unwrap() error { return e.Err }

// IsRestoreError reports whether err is iptables-restore rejecting input
// (as opposed to the binary being missing or the context ending).
func IsRestoreError(err error) bool {
	var re *RestoreError
	return errors.As(err, &re)
}

// restoreLineRE finds the failing line in iptables-restore's messages, for
// example "iptables-restore: line 17 failed" or "Error occurred at line: 17".
var restoreLineRE = regexp.MustCompile(`(?:line:? |line )(\d+)`)

// failedLine extracts the line number from iptables-restore's output.
func failedLine(output string) int {
	m := restoreLineRE.FindStringSubmatch(output)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
