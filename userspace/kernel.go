package userspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Kernel is the seam between the proxier and iptables. ExecKernel runs the
// real binaries; Fake behaves like them in memory.
type Kernel interface {
	// Restore feeds data to "iptables-restore -w --noflush". Each table's
	// COMMIT is atomic.
	Restore(ctx context.Context, data []byte) error
	// EnsureRule appends rule to chain unless an identical rule is there.
	EnsureRule(ctx context.Context, table, chain string, rule ...string) error
	// DeleteRule removes rule from chain; a missing rule or chain is fine.
	DeleteRule(ctx context.Context, table, chain string, rule ...string) error
	// DeleteChain flushes and deletes chain; a missing chain is fine.
	DeleteChain(ctx context.Context, table, chain string) error
}

// ExecKernel runs iptables (or ip6tables) binaries.
type ExecKernel struct {
	Family proxier.Family
	// Backend selects the iptables binaries (xtables.Plain: "iptables").
	Backend xtables.Backend
	// Netns, when set, runs every command through "ip netns exec Netns"
	// (tests); the production process uses its own namespace.
	Netns string
}

var _ Kernel = (*ExecKernel)(nil)

func (k *ExecKernel) binary(suffix string) string {
	return xtables.Binary(k.Family, k.Backend, suffix)
}

func (k *ExecKernel) run(ctx context.Context, stdin []byte, args ...string) (string, error) {
	if k.Netns != "" {
		args = append([]string{"ip", "netns", "exec", k.Netns}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return out.String(), err
}

// Restore implements Kernel.
func (k *ExecKernel) Restore(ctx context.Context, data []byte) error {
	out, err := k.run(ctx, data, k.binary("-restore"), "-w", "--noflush")
	if err != nil {
		return fmt.Errorf("%s: %w: %s", k.binary("-restore"), err, strings.TrimSpace(out))
	}
	return nil
}

// EnsureRule implements Kernel.
func (k *ExecKernel) EnsureRule(ctx context.Context, table, chain string, rule ...string) error {
	if _, err := k.run(ctx, nil, append([]string{k.binary(""), "-w", "-t", table, "-C", chain}, rule...)...); err == nil {
		return nil
	}
	out, err := k.run(ctx, nil, append([]string{k.binary(""), "-w", "-t", table, "-A", chain}, rule...)...)
	if err != nil {
		return fmt.Errorf("%s -t %s -A %s: %w: %s", k.binary(""), table, chain, err, strings.TrimSpace(out))
	}
	return nil
}

// DeleteRule implements Kernel.
func (k *ExecKernel) DeleteRule(ctx context.Context, table, chain string, rule ...string) error {
	for {
		// -C fails when the rule (or chain) is missing: then we are done.
		if _, err := k.run(ctx, nil, append([]string{k.binary(""), "-w", "-t", table, "-C", chain}, rule...)...); err != nil {
			return ctx.Err()
		}
		out, err := k.run(ctx, nil, append([]string{k.binary(""), "-w", "-t", table, "-D", chain}, rule...)...)
		if err != nil {
			return fmt.Errorf("%s -t %s -D %s: %w: %s", k.binary(""), table, chain, err, strings.TrimSpace(out))
		}
	}
}

// DeleteChain implements Kernel.
func (k *ExecKernel) DeleteChain(ctx context.Context, table, chain string) error {
	if _, err := k.run(ctx, nil, k.binary(""), "-w", "-t", table, "-n", "-L", chain); err != nil {
		return ctx.Err() // no such chain
	}
	var errs []error
	for _, op := range []string{"-F", "-X"} {
		if out, err := k.run(ctx, nil, k.binary(""), "-w", "-t", table, op, chain); err != nil {
			errs = append(errs, fmt.Errorf("%s -t %s %s %s: %w: %s", k.binary(""), table, op, chain, err, strings.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}
