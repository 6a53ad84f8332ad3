package main

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
)

// runCleanup is --cleanup: remove the rules of every mode and both
// families, whatever mode is configured (a node may switch modes), from
// every installed iptables backend (a node may switch backends too).
func runCleanup(ctx context.Context, c *Config) error {
	backends, err := xtables.ToClean(ctx, xtables.ExecEnv(""))
	if err != nil {
		return err
	}
	klog.InfoS("Cleaning up", "iptablesBackends", backends)
	if err := cleanupAll(ctx, modeSettings{cfg: c}, backends); err != nil {
		return err
	}
	klog.InfoS("Removed everything kproxy created")
	return nil
}
