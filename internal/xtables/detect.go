package xtables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// saveTimeout bounds each iptables-save run by detection (iptables-nft
// 1.8.0–1.8.3 could loop forever, which is why the wrapper has one too).
const saveTimeout = 5 * time.Second

// Env is how detection looks at the node: which binaries exist, and how
// to run one. ExecEnv is the real one.
type Env struct {
	LookPath func(file string) (string, error)
	// Run runs bin with args and stdin (nil: none); it returns stdout
	// and, on failure, an error carrying stderr.
	Run func(ctx context.Context, stdin []byte, bin string, args ...string) ([]byte, error)
}

// ExecEnv runs the binaries in the process's network namespace, or with
// netns set, in that namespace (tests).
func ExecEnv(netns string) Env {
	return Env{
		LookPath: exec.LookPath,
		Run: func(ctx context.Context, stdin []byte, bin string, args ...string) ([]byte, error) {
			var out bytes.Buffer
			errOut, err := runIn(ctx, netns, stdin, &out, bin, args...)
			if err != nil {
				return out.Bytes(), fmt.Errorf("%s: %w: %s", bin, err, bytes.TrimSpace(errOut))
			}
			return out.Bytes(), nil
		},
	}
}

// installed reports whether iptables, -save and -restore of backend b
// (IPv4) are all on PATH.
func (e Env) installed(b Backend) bool {
	for _, tool := range []string{"", "-save", "-restore"} {
		if _, err := e.LookPath(Binary(proxier.IPv4, b, tool)); err != nil {
			return false
		}
	}
	return true
}

// holdings counts what backend b holds in both families. Like the
// wrapper it saves every table: "-t mangle" would make iptables-legacy
// create that table. Errors count as empty (a missing ip6tables, a
// kernel without the backend): detection is best effort.
func (e Env) holdings(ctx context.Context, b Backend) Holdings {
	var h Holdings
	for _, f := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
		bin := Binary(f, b, "-save")
		if _, err := e.LookPath(bin); err != nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, saveTimeout)
		out, err := e.Run(sctx, nil, bin)
		cancel()
		if err != nil {
			klog.V(2).InfoS("Could not read an iptables backend, counting it as empty", "binary", bin, "err", err)
			continue
		}
		h = h.Add(Count(out))
	}
	return h
}

// Detect looks at the node: which backends are installed and, when both
// are, what each holds.
func Detect(ctx context.Context, e Env) Host {
	h := Host{HasLegacy: e.installed(Legacy), HasNFT: e.installed(NFT), HasPlain: e.installed(Plain)}
	if h.HasLegacy && h.HasNFT {
		h.Legacy, h.NFT = e.holdings(ctx, Legacy), e.holdings(ctx, NFT)
	}
	return h
}

// Select returns the backend to use: the requested one (legacy or nft,
// which must be installed), or with Auto the one Choose picks.
func Select(ctx context.Context, requested Backend, e Env) (Choice, error) {
	switch requested {
	case Auto:
		return Choose(Detect(ctx, e))
	case Legacy, NFT:
		if !e.installed(requested) {
			return Choice{}, fmt.Errorf("--iptables-backend=%s: %s, %s and %s must be installed", requested,
				Binary(proxier.IPv4, requested, ""), Binary(proxier.IPv4, requested, "-save"), Binary(proxier.IPv4, requested, "-restore"))
		}
		return Choice{requested, "--iptables-backend=" + string(requested)}, nil
	}
	return Choice{}, fmt.Errorf("unknown iptables backend %q", requested)
}

// ToClean returns the backends --cleanup must clean (a node may have
// switched backends): with both installed, each one holding KUBE-* or
// KPROXY-* chains, or if neither does, the one Select would choose (the
// ipvs mode's cleanup also removes what is outside iptables). Cleaning
// an unused legacy backend would create its tables.
func ToClean(ctx context.Context, e Env) ([]Backend, error) {
	h := Detect(ctx, e)
	var out []Backend
	if h.HasLegacy && h.HasNFT {
		if h.Legacy.KubeChains > 0 {
			out = append(out, Legacy)
		}
		if h.NFT.KubeChains > 0 {
			out = append(out, NFT)
		}
	}
	if len(out) == 0 {
		c, err := Choose(h)
		if err != nil {
			return nil, err
		}
		out = append(out, c.Backend)
	}
	return out, nil
}

// ProbeRestore checks that iptables-restore of backend b works in this
// network namespace for family f: it commits the filter and nat tables
// unchanged (--noflush, no rules), which fails when the kernel lacks
// the backend or the tables, or the process lacks CAP_NET_ADMIN.
func ProbeRestore(ctx context.Context, e Env, f proxier.Family, b Backend) error {
	bin := Binary(f, b, "-restore")
	if _, err := e.LookPath(bin); err != nil {
		return fmt.Errorf("%s not found: %w", bin, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e.Run(ctx, []byte("*filter\nCOMMIT\n*nat\nCOMMIT\n"), bin, "-w", "5", "--noflush"); err != nil {
		return err
	}
	return nil
}
