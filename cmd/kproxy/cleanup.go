package main

import (
	"context"

	"k8s.io/klog/v2"
)

// runCleanup is --cleanup: remove the rules of every mode and both
// families, whatever mode is configured (a node may switch modes).
func runCleanup(ctx context.Context, c *Config) error {
	if err := cleanupAll(ctx, modeSettings{cfg: c}); err != nil {
		return err
	}
	klog.InfoS("Removed everything kproxy created")
	return nil
}
