package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// bothFamilies are the families cleanup looks at, whatever this run
// proxies.
var bothFamilies = []proxier.Family{proxier.IPv4, proxier.IPv6}

// runCleanup is --cleanup: remove the rules of every mode and both
// families, whatever mode is configured (a node may switch modes), from
// every installed iptables backend (a node may switch backends too).
func runCleanup(ctx context.Context, c *Config) error {
	backends, err := xtables.ToClean(ctx, xtables.ExecEnv(""))
	if err != nil {
		return err
	}
	klog.InfoS("Cleaning up", "iptablesBackends", backends)
	if err := cleanupAll(ctx, modeTable, modeSettings{cfg: c}, backends); err != nil {
		return err
	}
	klog.InfoS("Removed everything kproxy created")
	return nil
}

// cleanupAll removes what every mode of table created, for both families
// and in every iptables backend given (a node may have switched
// backends), in this network namespace. Each step runs even if an earlier
// one failed.
func cleanupAll(ctx context.Context, table []mode, s modeSettings, backends []xtables.Backend) error {
	// A second pass when the first failed: with the rules of two modes
	// sharing chain names in place, the first pass unties what references
	// the other's chains (see cleanupLeftovers); likewise an ipset still
	// used by a rule of the backend cleaned after it.
	err := cleanupAllOnce(ctx, table, s, backends)
	if err != nil {
		klog.V(1).InfoS("Cleanup incomplete, trying again", "err", err)
		err = cleanupAllOnce(ctx, table, s, backends)
	}
	return err
}

func cleanupAllOnce(ctx context.Context, table []mode, s modeSettings, backends []xtables.Backend) error {
	var errs []error
	for _, f := range bothFamilies {
		for _, m := range cleanupOrder(table) {
			for _, b := range backends {
				s.backend = b
				err := m.Cleanup(ctx, s, f)
				if errors.Is(err, exec.ErrNotFound) {
					klog.InfoS("Tools for this family missing, nothing to clean up", "mode", m.Name, "ipFamily", f, "backend", b, "err", err)
					err = nil
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s cleanup (%s): %w", m.Name, f, b, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// cleanupOrder is the order modes are cleaned in: the table's, with the
// node-wide modes last. A mode sharing chain names (ipvs) cannot delete
// them while another's rules jump to them; once they are gone, it
// removes what is its alone (virtual servers, kube-ipvs0, ipsets no rule
// references).
func cleanupOrder(table []mode) []*mode {
	var perFamily, nodeWide []*mode
	for i := range table {
		if table[i].NodeWide {
			nodeWide = append(nodeWide, &table[i])
		} else {
			perFamily = append(perFamily, &table[i])
		}
	}
	return append(perFamily, nodeWide...)
}
