package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// cleanupLeftovers runs at start, before the first sync: it removes what
// another mode, or an IP family this run does not proxy, left behind (a
// take-over from kube-proxy, a mode switch, a cluster that dropped a
// family), so that no stale rule keeps answering for Services. Every
// other mode of the table is cleaned, as mustClean decides; no rule here
// names a mode.
//
// cleanDisabled is false when the families were guessed (no Node object):
// the rules of a family that may be real are then left alone.
func cleanupLeftovers(ctx context.Context, s modeSettings, families []proxier.Family, cleanDisabled bool) error {
	return removeLeftovers(ctx, modeTable, s, families, cleanDisabled)
}

// leftoverCleanup is one Cleanup leftover removal runs.
type leftoverCleanup struct {
	mode   *mode
	family proxier.Family
}

func removeLeftovers(ctx context.Context, table []mode, s modeSettings, families []proxier.Family, cleanDisabled bool) error {
	current, known := findMode(table, s.cfg.Mode)
	if !known {
		return fmt.Errorf("unknown proxy mode %q", s.cfg.Mode)
	}
	// Decide everything before cleaning anything: a Cleanup may remove
	// the sign another family's decision looks for (kube-ipvs0).
	var plan []leftoverCleanup
	for _, f := range bothFamilies {
		enabled := slices.Contains(families, f)
		if !enabled && !cleanDisabled {
			continue
		}
		for _, m := range cleanupOrder(table) {
			if mustClean(ctx, m, current, s, f, enabled) {
				plan = append(plan, leftoverCleanup{m, f})
			}
		}
	}
	// Two passes at most: when two modes sharing chain names both left
	// rules, each one's chains may still be referenced by the other's
	// while its cleanup runs; the first pass unties them.
	var errs []error
	for pass := 0; pass < 2; pass++ {
		errs = runLeftoverCleanups(ctx, s, plan)
		if len(errs) == 0 {
			break
		}
	}
	if len(errs) == 0 {
		klog.V(1).InfoS("Checked for leftovers of other modes and families", "mode", current.Name, "families", families)
	}
	return errors.Join(errs...)
}

// mustClean decides whether leftover removal cleans mode m in family f
// while current runs. To keep traffic flowing across a restart in the
// same mode, the running mode's chains are never cleaned in a family it
// proxies, nor those of a mode sharing their names unless that one's own
// signs are there (the first full sync rewrites the shared chains
// anyway); a node-wide mode is cleaned only when its sign is there, and
// never by itself (kube-ipvs0 serves both families).
func mustClean(ctx context.Context, m, current *mode, s modeSettings, f proxier.Family, enabled bool) bool {
	hasLeftovers := func() bool {
		has, err := m.HasLeftovers(ctx, s, f)
		return err == nil && has // unreadable: assume none, as before a first run
	}
	switch {
	case m.NodeWide:
		return m.Name != current.Name && hasLeftovers()
	case m.Name == current.Name:
		return !enabled
	case enabled && m.SharedChains && current.SharedChains:
		return hasLeftovers()
	}
	return true
}

func runLeftoverCleanups(ctx context.Context, s modeSettings, plan []leftoverCleanup) []error {
	var errs []error
	for _, c := range plan {
		err := c.mode.Cleanup(ctx, s, c.family)
		if errors.Is(err, exec.ErrNotFound) {
			err = nil // no ip6tables, say: nothing of that family can be there
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s leftovers: %w", c.mode.Name, c.family, err))
		}
	}
	return errs
}
