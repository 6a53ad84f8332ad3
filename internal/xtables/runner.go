package xtables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/kproxy/kproxy/proxier"
)

// RunnerConfig selects the binaries and network namespace of a Runner.
type RunnerConfig struct {
	Family  proxier.Family
	Backend Backend
	// Netns, when set, names a network namespace (a name in /run/netns,
	// or a path) in which every command runs; empty means the process's
	// own. Tests use it to program a throwaway namespace.
	Netns string
}

// Runner is Tables of the real iptables binaries, shared by every mode
// that writes iptables rules: restore and save are run directly,
// single-rule operations through go-iptables.
type Runner struct {
	cfg                 RunnerConfig
	restoreBin, saveBin string
	initOnce            sync.Once
	initErr             error
	ipt                 *goipt.IPTables
}

var _ Tables = (*Runner)(nil)

// NewRunner checks that the binaries exist; it does not run them (the
// version check go-iptables makes runs lazily, on first use).
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	switch cfg.Backend {
	case Legacy, NFT, Plain:
	default:
		return nil, fmt.Errorf("iptables: unknown backend %q", cfg.Backend)
	}
	r := &Runner{cfg: cfg, restoreBin: binaryOf(cfg, "-restore"), saveBin: binaryOf(cfg, "-save")}
	for _, b := range []string{binaryOf(cfg, ""), r.restoreBin, r.saveBin} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("iptables: %s not found: %w", b, err)
		}
	}
	return r, nil
}

// binaryOf names one of cfg's binaries (tool "", "-save" or "-restore").
func binaryOf(cfg RunnerConfig, tool string) string { return Binary(cfg.Family, cfg.Backend, tool) }

// DetectBackend runs "iptables --version" and returns NFT or Legacy.
func (r *Runner) DetectBackend(ctx context.Context) (Backend, error) {
	out, err := r.run(ctx, nil, nil, binaryOf(r.cfg, ""), "--version")
	if err != nil {
		return "", err
	}
	switch {
	case strings.Contains(string(out), "nf_tables"):
		return NFT, nil
	case strings.Contains(string(out), "legacy"):
		return Legacy, nil
	}
	return "", fmt.Errorf("iptables: cannot tell backend from %q", strings.TrimSpace(string(out)))
}

// Restore implements Tables.
func (r *Runner) Restore(ctx context.Context, data []byte, counters bool) error {
	args := []string{"-w", "5", "--noflush"}
	if counters {
		args = append(args, "--counters")
	}
	// stdout is dropped: a "-S" in the input lists the table there.
	out, err := r.run(ctx, data, io.Discard, r.restoreBin, args...)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return NewRestoreError(data, strings.TrimSpace(string(out)), err)
		}
		return fmt.Errorf("run %s: %w", r.restoreBin, err)
	}
	return nil
}

// Save implements Tables.
func (r *Runner) Save(ctx context.Context, table string) ([]byte, error) {
	var stdout bytes.Buffer
	errOut, err := r.run(ctx, nil, &stdout, r.saveBin, "-t", table)
	if err != nil {
		return nil, fmt.Errorf("run %s -t %s: %w: %s", r.saveBin, table, err, bytes.TrimSpace(errOut))
	}
	return stdout.Bytes(), nil
}

// SetSysctl implements Tables. The file is opened on a thread inside the
// namespace, so it is that namespace's sysctl.
func (r *Runner) SetSysctl(_ context.Context, name, value string) error {
	return SetSysctl(r.cfg.Netns, name, value)
}

// SetSysctl writes a sysctl ("net/ipv4/conf/all/...") of network
// namespace ns ("" for the process's own).
func SetSysctl(ns, name, value string) error {
	return InNetns(ns, func() error {
		return os.WriteFile("/proc/sys/"+name, []byte(value), 0o644)
	})
}

// run executes bin inside the namespace with stdin (nil: none), writing
// its stdout to stdout (nil: with stderr); it returns what went to
// stderr.
func (r *Runner) run(ctx context.Context, stdin []byte, stdout io.Writer, bin string, args ...string) ([]byte, error) {
	return runIn(ctx, r.cfg.Netns, stdin, stdout, bin, args...)
}

// runIn is Runner.run for any namespace.
func runIn(ctx context.Context, ns string, stdin []byte, stdout io.Writer, bin string, args ...string) ([]byte, error) {
	var errb bytes.Buffer
	err := InNetns(ns, func() error {
		cmd := exec.CommandContext(ctx, bin, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		cmd.Stdout, cmd.Stderr = stdout, &errb
		if stdout == nil {
			cmd.Stdout = &errb
		}
		return cmd.Run()
	})
	return errb.Bytes(), err
}
