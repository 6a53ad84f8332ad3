package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/iptables"
	"github.com/kproxy/kproxy/proxier"
)

// modeSettings is what the per-mode constructors need besides the family.
type modeSettings struct {
	cfg          *Config
	clusterCIDRs []netip.Prefix
	metrics      *proxier.Metrics
}

// syncPeriods returns the mode's (minimum, maximum) sync interval.
func syncPeriods(c *Config) (minSync, sync time.Duration) {
	if string(c.Mode) == ModeIPVS {
		return c.IPVS.MinSyncPeriod.Duration, c.IPVS.SyncPeriod.Duration
	}
	return c.IPTables.MinSyncPeriod.Duration, c.IPTables.SyncPeriod.Duration
}

// iptablesOptions maps the configuration onto the iptables mode's options
// for one family. render uses it too, so that "kproxy render" prints what
// the daemon would write.
func iptablesOptions(s modeSettings, f proxier.Family) iptables.Options {
	return iptables.Options{
		Family:             f,
		MasqueradeBit:      int(*s.cfg.IPTables.MasqueradeBit),
		MasqueradeAll:      s.cfg.IPTables.MasqueradeAll,
		ClusterCIDRs:       s.clusterCIDRs,
		NodePortAddresses:  s.cfg.NodePortAddresses,
		LocalhostNodePorts: *s.cfg.IPTables.LocalhostNodePorts,
		Metrics:            s.metrics,
	}
}

// errModeNotBuilt is returned for a mode whose package is not in this
// binary yet.
var errModeNotBuilt = errors.New("mode not available in this build")

// newBackends builds one Proxier per family for the configured mode. Like
// every constructor here it writes nothing to the kernel.
func newBackends(s modeSettings, families []proxier.Family) (map[proxier.Family]proxier.Proxier, error) {
	out := map[proxier.Family]proxier.Proxier{}
	for _, f := range families {
		var (
			p   proxier.Proxier
			err error
		)
		switch string(s.cfg.Mode) {
		case ModeIPTables:
			p, err = iptables.New(iptablesOptions(s, f))
		case ModeIPVS, ModeUserspace:
			// The ipvs and userspace packages are not in this tree yet;
			// add their constructors here when they are.
			err = fmt.Errorf("--proxy-mode=%s: %w", s.cfg.Mode, errModeNotBuilt)
		default:
			err = fmt.Errorf("unknown proxy mode %q", s.cfg.Mode)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s backend: %w", s.cfg.Mode, f, err)
		}
		out[f] = p
	}
	return out, nil
}

// cleanupAll removes what every mode created, for both families, in this
// network namespace. Each step runs even if an earlier one failed.
func cleanupAll(ctx context.Context, s modeSettings) error {
	var errs []error
	for _, f := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
		err := iptables.Cleanup(ctx, iptablesOptions(s, f))
		if errors.Is(err, exec.ErrNotFound) {
			klog.InfoS("No iptables binaries for this family, nothing to clean up", "ipFamily", f, "err", err)
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables %s cleanup: %w", f, err))
		}
		// ipvs.Cleanup and userspace.Cleanup go here once those packages
		// exist (cleanupIPVS / cleanupUserspace hooks).
	}
	return errors.Join(errs...)
}
