package xtables

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	goipt "github.com/coreos/go-iptables/iptables"

	"github.com/kproxy/kproxy/proxier"
)

// init creates the go-iptables handle inside the namespace (it runs
// "iptables --version" to learn what the binary supports).
func (r *Runner) init() error {
	r.initOnce.Do(func() {
		proto := goipt.ProtocolIPv4
		if r.cfg.Family == proxier.IPv6 {
			proto = goipt.ProtocolIPv6
		}
		path, err := exec.LookPath(binaryOf(r.cfg, ""))
		if err != nil {
			r.initErr = err
			return
		}
		r.initErr = InNetns(r.cfg.Netns, func() error {
			var err error
			r.ipt, err = goipt.New(goipt.IPFamily(proto), goipt.Path(path), goipt.Timeout(5))
			return err
		})
	})
	return r.initErr
}

func (r *Runner) withIPT(fn func(*goipt.IPTables) error) error {
	if err := r.init(); err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	return InNetns(r.cfg.Netns, func() error { return fn(r.ipt) })
}

// EnsureChain implements Tables.
func (r *Runner) EnsureChain(_ context.Context, table, chain string) error {
	return r.withIPT(func(ipt *goipt.IPTables) error {
		ok, err := ipt.ChainExists(table, chain)
		if err != nil || ok {
			return err
		}
		return ipt.NewChain(table, chain)
	})
}

// EnsureRule implements Tables.
func (r *Runner) EnsureRule(_ context.Context, pos Position, table, chain string, rule ...string) (bool, error) {
	added := false
	err := r.withIPT(func(ipt *goipt.IPTables) error {
		ok, err := ipt.Exists(table, chain, rule...)
		if err != nil || ok {
			return err
		}
		added = true
		if pos == Append {
			return ipt.Append(table, chain, rule...)
		}
		return ipt.Insert(table, chain, 1, rule...)
	})
	return added, err
}

// DeleteRule implements Tables.
func (r *Runner) DeleteRule(_ context.Context, table, chain string, rule ...string) error {
	return r.withIPT(func(ipt *goipt.IPTables) error {
		if ok, err := ipt.ChainExists(table, chain); err != nil || !ok {
			return err
		}
		// A rule that jumps to one of our chains cannot exist once that
		// chain is gone, and iptables -C fails (rather than answering
		// "no") when its target is missing: nothing to delete then.
		if target := JumpTarget(rule); IsOwnChain(target) {
			if ok, err := ipt.ChainExists(table, target); err != nil || !ok {
				return err
			}
		}
		for {
			ok, err := ipt.Exists(table, chain, rule...)
			if err != nil || !ok {
				return err
			}
			if err := ipt.Delete(table, chain, rule...); err != nil {
				return err
			}
		}
	})
}

// JumpTarget returns the argument of -j / --jump in a rule, or "".
func JumpTarget(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "-j" || rule[i] == "--jump" {
			return rule[i+1]
		}
	}
	return ""
}

// IsOwnChain reports whether a chain name is one kproxy (or kube-proxy,
// whose names it shares) creates.
func IsOwnChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "KPROXY-")
}

// ChainExists implements Tables.
func (r *Runner) ChainExists(_ context.Context, table, chain string) (bool, error) {
	var ok bool
	err := r.withIPT(func(ipt *goipt.IPTables) error {
		var err error
		ok, err = ipt.ChainExists(table, chain)
		return err
	})
	return ok, err
}

// DeleteChain implements Tables.
func (r *Runner) DeleteChain(_ context.Context, table, chain string) error {
	return r.withIPT(func(ipt *goipt.IPTables) error {
		ok, err := ipt.ChainExists(table, chain)
		if err != nil || !ok {
			return err
		}
		return ipt.ClearAndDeleteChain(table, chain)
	})
}

// HasRandomFully implements Tables.
func (r *Runner) HasRandomFully() bool {
	if r.init() != nil {
		return false
	}
	return r.ipt.HasRandomFully()
}
