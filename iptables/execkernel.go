package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	goipt "github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netns"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// ExecConfig selects the binaries and namespace of an ExecKernel.
type ExecConfig struct {
	Family proxier.Family
	// Backend is "legacy", "nft" or "" (whatever plain "iptables" is).
	Backend string
	// Netns, when set, names a network namespace (as in /run/netns) in
	// which every command runs; empty means the process's own. Tests use
	// it to program a throwaway namespace from the test process.
	Netns string
}

// ExecKernel is the Kernel of the real iptables binaries: restore and save
// are run directly, single-rule operations through go-iptables.
type ExecKernel struct {
	cfg                 ExecConfig
	restoreBin, saveBin string
	ipt                 *goipt.IPTables
	initOnce            sync.Once
	initErr             error
}

var _ Kernel = (*ExecKernel)(nil)

// NewExecKernel checks that the binaries exist; it does not run them (the
// backend detection runs "iptables --version" lazily, on first use).
func NewExecKernel(cfg ExecConfig) (*ExecKernel, error) {
	switch xtables.Backend(cfg.Backend) {
	case xtables.Legacy, xtables.NFT, xtables.Plain:
	default:
		return nil, fmt.Errorf("iptables: unknown backend %q", cfg.Backend)
	}
	k := &ExecKernel{cfg: cfg, restoreBin: binaryOf(cfg, "-restore"), saveBin: binaryOf(cfg, "-save")}
	for _, b := range []string{binaryOf(cfg, ""), k.restoreBin, k.saveBin} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("iptables: %s not found: %w", b, err)
		}
	}
	return k, nil
}

// k0 names one of cfg's binaries (tool "", "-save" or "-restore").
func binaryOf(cfg ExecConfig, tool string) string {
	return xtables.Binary(cfg.Family, xtables.Backend(cfg.Backend), tool)
}

// init creates the go-iptables handle inside the namespace (it runs
// "iptables --version" to learn what the binary supports).
func (k *ExecKernel) init() error {
	k.initOnce.Do(func() {
		proto := goipt.ProtocolIPv4
		if k.cfg.Family == proxier.IPv6 {
			proto = goipt.ProtocolIPv6
		}
		path, err := exec.LookPath(binaryOf(k.cfg, ""))
		if err != nil {
			k.initErr = err
			return
		}
		k.initErr = k.inNetns(func() error {
			var err error
			k.ipt, err = goipt.New(goipt.IPFamily(proto), goipt.Path(path), goipt.Timeout(5))
			return err
		})
	})
	return k.initErr
}

// DetectBackend runs "iptables --version" and returns "nft" or "legacy".
func (k *ExecKernel) DetectBackend(ctx context.Context) (string, error) {
	out, err := k.run(ctx, nil, binaryOf(k.cfg, ""), "--version")
	if err != nil {
		return "", err
	}
	switch {
	case strings.Contains(string(out), "nf_tables"):
		return "nft", nil
	case strings.Contains(string(out), "legacy"):
		return "legacy", nil
	}
	return "", fmt.Errorf("iptables: cannot tell backend from %q", strings.TrimSpace(string(out)))
}

// Restore implements Kernel.
func (k *ExecKernel) Restore(ctx context.Context, data []byte, counters bool) error {
	args := []string{"-w", "5", "--noflush"}
	if counters {
		args = append(args, "--counters")
	}
	// stdout is dropped: a "-S" in the input (see listAllMin) lists the
	// table there.
	out, err := k.runQuiet(ctx, data, k.restoreBin, args...)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &RestoreError{Line: failedLine(string(out)), Output: strings.TrimSpace(string(out)), Err: err}
		}
		return fmt.Errorf("run %s: %w", k.restoreBin, err)
	}
	return nil
}

// Save implements Kernel.
func (k *ExecKernel) Save(ctx context.Context, table string) ([]byte, error) {
	out, err := k.run(ctx, nil, k.saveBin, "-t", table)
	if err != nil {
		return nil, fmt.Errorf("run %s -t %s: %w: %s", k.saveBin, table, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// EnsureChain implements Kernel.
func (k *ExecKernel) EnsureChain(_ context.Context, table, chain string) error {
	return k.withIPT(func(ipt *goipt.IPTables) error {
		ok, err := ipt.ChainExists(table, chain)
		if err != nil || ok {
			return err
		}
		return ipt.NewChain(table, chain)
	})
}

// EnsureRule implements Kernel.
func (k *ExecKernel) EnsureRule(_ context.Context, table, chain string, rule ...string) (bool, error) {
	inserted := false
	err := k.withIPT(func(ipt *goipt.IPTables) error {
		ok, err := ipt.Exists(table, chain, rule...)
		if err != nil || ok {
			return err
		}
		inserted = true
		return ipt.Insert(table, chain, 1, rule...)
	})
	return inserted, err
}

// DeleteRule implements Kernel.
func (k *ExecKernel) DeleteRule(_ context.Context, table, chain string, rule ...string) error {
	return k.withIPT(func(ipt *goipt.IPTables) error {
		if ok, err := ipt.ChainExists(table, chain); err != nil || !ok {
			return err
		}
		// A rule that jumps to one of our chains cannot exist once that
		// chain is gone, and iptables -C fails (rather than answering
		// "no") when its target is missing: nothing to delete then.
		if target := jumpTarget(rule); isOurChain(target) {
			if ok, err := ipt.ChainExists(table, target); err != nil || !ok {
				return err
			}
		}
		return ipt.DeleteIfExists(table, chain, rule...)
	})
}

// jumpTarget returns the argument of -j / --jump in a rule, or "".
func jumpTarget(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "-j" || rule[i] == "--jump" {
			return rule[i+1]
		}
	}
	return ""
}

// isOurChain reports whether a jump target is a user chain kproxy (or
// kube-proxy, whose names it shares) creates.
func isOurChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "KPROXY-")
}

// ChainExists implements Kernel.
func (k *ExecKernel) ChainExists(_ context.Context, table, chain string) (bool, error) {
	var ok bool
	err := k.withIPT(func(ipt *goipt.IPTables) error {
		var err error
		ok, err = ipt.ChainExists(table, chain)
		return err
	})
	return ok, err
}

// DeleteChain implements Kernel.
func (k *ExecKernel) DeleteChain(_ context.Context, table, chain string) error {
	return k.withIPT(func(ipt *goipt.IPTables) error {
		ok, err := ipt.ChainExists(table, chain)
		if err != nil || !ok {
			return err
		}
		return ipt.ClearAndDeleteChain(table, chain)
	})
}

// SetSysctl implements Kernel. The file is opened on a thread inside the
// namespace, so it is that namespace's sysctl.
func (k *ExecKernel) SetSysctl(_ context.Context, name, value string) error {
	return k.inNetns(func() error {
		return os.WriteFile("/proc/sys/"+name, []byte(value), 0o644)
	})
}

// HasRandomFully implements Kernel.
func (k *ExecKernel) HasRandomFully() bool {
	if k.init() != nil {
		return false
	}
	return k.ipt.HasRandomFully()
}

func (k *ExecKernel) withIPT(fn func(*goipt.IPTables) error) error {
	if err := k.init(); err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	return k.inNetns(func() error { return fn(k.ipt) })
}

// run executes a binary (inside the namespace) and returns its combined
// output.
func (k *ExecKernel) run(ctx context.Context, stdin []byte, bin string, args ...string) ([]byte, error) {
	var out []byte
	err := k.inNetns(func() error {
		cmd := exec.CommandContext(ctx, bin, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		out = buf.Bytes()
		return err
	})
	return out, err
}

// runQuiet is run with stdout discarded; it returns stderr.
func (k *ExecKernel) runQuiet(ctx context.Context, stdin []byte, bin string, args ...string) ([]byte, error) {
	var out []byte
	err := k.inNetns(func() error {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &buf
		err := cmd.Run()
		out = buf.Bytes()
		return err
	})
	return out, err
}

// inNetns runs fn on an OS thread inside cfg.Netns; processes fn starts
// are forked from that thread and so live in the namespace too.
func (k *ExecKernel) inNetns(fn func() error) error {
	if k.cfg.Netns == "" {
		return fn()
	}
	target, err := netns.GetFromName(k.cfg.Netns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", k.cfg.Netns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return // the thread is discarded: it stays locked
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %q: %w", k.cfg.Netns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
