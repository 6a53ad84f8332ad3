package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/nftables"
	"github.com/kproxy/kproxy/proxier"
)

// startupChecks runs before kproxy contacts the API server: it selects
// the iptables backend (logged once) and checks that the kernel can run
// the mode.
func startupChecks(ctx context.Context, o *Options) (xtables.Backend, error) {
	requested, err := xtables.ParseBackend(o.IPTablesBackend)
	if err != nil {
		return "", err // validated with the options
	}
	choice, err := xtables.Select(ctx, requested, xtables.ExecEnv(""))
	if err != nil {
		return "", err
	}
	klog.InfoS("Using iptables backend", "backend", choice.Backend, "reason", choice.Reason)
	m, known := modeNamed(o.Config.Mode)
	if !known {
		return "", fmt.Errorf("unknown proxy mode %q", o.Config.Mode) // validated with the options
	}
	if err := preflight(ctx, m.Name, m.Needs(choice.Backend), choice.Backend); err != nil {
		return "", err
	}
	return choice.Backend, nil
}

// requirement is one kernel feature a mode needs (mode.Needs), how to
// check it in kproxy's network namespace (nil or what is wrong) and how
// to get it.
type requirement struct {
	name  string
	probe func(context.Context) error
	fix   string
}

// needIPTables: iptables-restore of the chosen backend commits the filter
// and nat tables.
func needIPTables(b xtables.Backend) requirement {
	return requirement{
		name: "iptables",
		probe: func(ctx context.Context) error {
			return xtables.ProbeRestore(ctx, xtables.ExecEnv(""), proxier.IPv4, b)
		},
		fix: fmt.Sprintf("%s must work in kproxy's network namespace: run it with CAP_NET_ADMIN and make sure the kernel has the %s backend, or choose the other with --iptables-backend",
			xtables.Binary(proxier.IPv4, b, "-restore"), b),
	}
}

// onlyIPTables is the Needs of a mode that only writes iptables rules.
func onlyIPTables(b xtables.Backend) []requirement { return []requirement{needIPTables(b)} }

// needIPVS: the IPVS netlink family answers and its sysctls exist.
var needIPVS = requirement{
	name:  "IPVS",
	probe: func(context.Context) error { return ipvs.ProbeIPVS() },
	fix:   `load it on the node ("modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh", or run kproxy privileged with /lib/modules mounted so the kernel loads it)`,
}

// needIPSet: the ipset netlink subsystem answers.
var needIPSet = requirement{
	name:  "ipset",
	probe: func(context.Context) error { return ipvs.ProbeIPSet() },
	fix:   `load it on the node ("modprobe -a ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet ip_set_hash_net ip_set_bitmap_port")`,
}

// needNFTables: nft ≥ 1.0.1 may change the kernel's tables, and the
// kernel is new enough (nftables.Probe).
var needNFTables = requirement{
	name:  "nftables",
	probe: nftables.Probe,
	fix:   `install nftables ≥ 1.0.1 in kproxy's image and run it with CAP_NET_ADMIN on a kernel ≥ 5.13 with nf_tables, or choose --proxy-mode=iptables`,
}

// preflight probes needs, what mode needs from the kernel, and returns
// one error naming everything missing and how to fix it: a mode the node
// cannot run must fail at once, not log a failed sync forever.
func preflight(ctx context.Context, mode string, needs []requirement, b xtables.Backend) error {
	var missing []string
	for _, r := range needs {
		if err := r.probe(ctx); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v; %s", r.name, err, r.fix))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("this node cannot run --proxy-mode=%s: %s%s", mode, strings.Join(missing, ". "), suggestDefaultMode(needs, b))
}

// suggestDefaultMode points to the default mode when a mode needs more
// from the kernel than it does.
func suggestDefaultMode(needs []requirement, b xtables.Backend) string {
	def, _ := modeNamed(defaultMode)
	var defNames []string
	for _, r := range def.Needs(b) {
		defNames = append(defNames, r.name)
	}
	for _, r := range needs {
		if !slices.Contains(defNames, r.name) {
			return fmt.Sprintf(". Or use --proxy-mode=%s, which needs only %s", def.Name, strings.Join(defNames, " and "))
		}
	}
	return ""
}
