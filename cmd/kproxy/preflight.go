package main

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/proxier"
)

// startupChecks runs before kproxy contacts the API server: it selects
// the iptables backend (logged once) and checks that the kernel can run
// the mode.
func startupChecks(ctx context.Context, o *Options, probes func(xtables.Backend) kernelProbes) (xtables.Backend, error) {
	requested, err := xtables.ParseBackend(o.IPTablesBackend)
	if err != nil {
		return "", err // validated with the options
	}
	choice, err := xtables.Select(ctx, requested, xtables.ExecEnv(""))
	if err != nil {
		return "", err
	}
	klog.InfoS("Using iptables backend", "backend", choice.Backend, "reason", choice.Reason)
	if err := preflight(ctx, string(o.Config.Mode), probes(choice.Backend), choice.Backend); err != nil {
		return "", err
	}
	return choice.Backend, nil
}

// kernelProbes check, in kproxy's network namespace, the kernel features
// the modes need; each returns nil or what is wrong. realProbes are the
// real ones; tests inject fakes.
type kernelProbes struct {
	// IPTables: iptables-restore of the chosen backend commits the filter
	// and nat tables.
	IPTables func(context.Context) error
	// IPVS: the IPVS netlink family answers and its sysctls exist.
	IPVS func(context.Context) error
	// IPSet: the ipset netlink subsystem answers.
	IPSet func(context.Context) error
}

func realProbes(b xtables.Backend) kernelProbes {
	return kernelProbes{
		IPTables: func(ctx context.Context) error {
			return xtables.ProbeRestore(ctx, xtables.ExecEnv(""), proxier.IPv4, b)
		},
		IPVS:  func(context.Context) error { return ipvs.ProbeIPVS() },
		IPSet: func(context.Context) error { return ipvs.ProbeIPSet() },
	}
}

// requirement is one kernel feature a mode needs and how to get it.
type requirement struct {
	name  string
	probe func(context.Context) error
	fix   string
}

// requirements lists what mode needs, in the order it is checked.
func requirements(mode string, p kernelProbes, b xtables.Backend) []requirement {
	ipt := requirement{"iptables", p.IPTables, fmt.Sprintf(
		"%s must work in kproxy's network namespace: run it with CAP_NET_ADMIN and make sure the kernel has the %s backend, or choose the other with --iptables-backend",
		xtables.Binary(proxier.IPv4, b, "-restore"), b)}
	if mode != ModeIPVS {
		return []requirement{ipt}
	}
	return []requirement{
		{"IPVS", p.IPVS, `load it on the node ("modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh", or run kproxy privileged with /lib/modules mounted so the kernel loads it)`},
		{"ipset", p.IPSet, `load it on the node ("modprobe -a ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet ip_set_hash_net ip_set_bitmap_port")`},
		ipt,
	}
}

// preflight checks at start that the kernel can run mode, and returns
// one error naming everything missing and how to fix it: a mode the node
// cannot run must fail at once, not log a failed sync forever.
func preflight(ctx context.Context, mode string, p kernelProbes, b xtables.Backend) error {
	var missing []string
	for _, r := range requirements(mode, p, b) {
		if err := r.probe(ctx); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v; %s", r.name, err, r.fix))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	alt := ""
	if mode == ModeIPVS {
		alt = ". Or use --proxy-mode=iptables, which needs only iptables"
	}
	return fmt.Errorf("this node cannot run --proxy-mode=%s: %s%s", mode, strings.Join(missing, ". "), alt)
}
