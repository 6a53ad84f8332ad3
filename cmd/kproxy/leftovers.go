package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/iptables"
	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/proxier"
	"github.com/kproxy/kproxy/userspace"
)

// cleanupLeftovers runs at start, before the first sync: it removes what
// another mode, or an IP family this run does not proxy, left behind (a
// take-over from kube-proxy, a mode switch, a cluster that dropped a
// family), so that no stale rule keeps answering for Services.
//
// The iptables and ipvs modes share kube-proxy's chain names. To keep
// traffic flowing across a restart in the same mode, the current mode's
// shared chains are never cleaned here: the iptables mode removes ipvs
// leftovers only when kube-ipvs0 (the sign of a previous ipvs run) exists,
// the ipvs mode removes iptables leftovers only when the iptables mode's
// own chains exist, and the first full sync rewrites the shared chains
// anyway.
//
// cleanDisabled is false when the families were guessed (no Node object):
// the rules of a family that may be real are then left alone.
func cleanupLeftovers(ctx context.Context, s modeSettings, families []proxier.Family, cleanDisabled bool) error {
	var errs []error
	run := func(mode string, f proxier.Family, cleanup func() error) {
		err := cleanup()
		if errors.Is(err, exec.ErrNotFound) {
			err = nil // no ip6tables, say: nothing of that family can be there
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s leftovers: %w", mode, f, err))
		}
	}
	mode := string(s.cfg.Mode)
	_, err := netlink.LinkByName(ipvs.Interface)
	ipvsPresent := err == nil
	// The ipvs mode's sign of a previous iptables run: per-Service chains
	// or the canaries (names the ipvs mode does not use).
	iptablesPresent := map[proxier.Family]bool{}
	if mode == ModeIPVS {
		for _, f := range families {
			iptablesPresent[f], _ = iptables.HasLeftovers(ctx, iptablesOptions(s, f))
		}
	}
	// Two passes at most: when both the iptables and the ipvs mode left
	// rules, each one's chains may still be referenced by the other's
	// while its cleanup runs; the first pass unties them.
	for pass := 0; pass < 2; pass++ {
		errs = nil
		for _, f := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
			enabled := slices.Contains(families, f)
			if !enabled && !cleanDisabled {
				continue
			}
			if !enabled || mode == ModeUserspace || iptablesPresent[f] {
				run(ModeIPTables, f, func() error { return iptables.Cleanup(ctx, iptablesOptions(s, f)) })
			}
			if !enabled || mode != ModeUserspace {
				run(ModeUserspace, f, func() error { return userspace.Cleanup(ctx, userspaceOptions(s, f)) })
			}
			// kube-ipvs0 serves both families: only another mode removes it.
			if mode != ModeIPVS && ipvsPresent {
				run(ModeIPVS, f, func() error { return ipvs.Cleanup(ctx, ipvsOptions(s, f)) })
			}
		}
		if len(errs) == 0 {
			break
		}
	}
	if len(errs) == 0 {
		klog.V(1).InfoS("Checked for leftovers of other modes and families", "mode", mode, "families", families)
	}
	return errors.Join(errs...)
}
