package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"time"

	"k8s.io/klog/v2"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/iptables"
	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/proxier"
	"github.com/kproxy/kproxy/userspace"
)

// modeSettings is what the per-mode constructors need besides the family.
type modeSettings struct {
	cfg          *Config
	local        proxier.LocalDetector
	metrics      *xtables.Metrics      // every mode writes iptables rules; nil: none
	registerer   prometheus.Registerer // userspace mode's per-service metrics; nil: none
	tcpBeLiberal bool                  // nf_conntrack_tcp_be_liberal is (or will be) 1
	userspace    UserspaceFlags
	backend      xtables.Backend // the iptables binaries every mode runs
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
		LocalDetector:      s.local,
		NodePortAddresses:  proxier.NodePortAddressesFor(f, s.cfg.NodePortAddresses),
		LocalhostNodePorts: *s.cfg.IPTables.LocalhostNodePorts,
		TCPBeLiberal:       s.tcpBeLiberal,
		Metrics:            s.metrics,
		Backend:            string(s.backend),
	}
}

// ipvsOptions maps the configuration onto the ipvs mode's options.
func ipvsOptions(s modeSettings, f proxier.Family) ipvs.Options {
	v := s.cfg.IPVS
	var exclude []netip.Prefix
	for _, c := range v.ExcludeCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil { // validated
			exclude = append(exclude, p.Masked())
		}
	}
	return ipvs.Options{
		Family:            f,
		Scheduler:         v.Scheduler,
		TCPTimeout:        v.TCPTimeout.Duration,
		TCPFinTimeout:     v.TCPFinTimeout.Duration,
		UDPTimeout:        v.UDPTimeout.Duration,
		StrictARP:         v.StrictARP,
		ExcludeCIDRs:      exclude,
		NodePortAddresses: proxier.NodePortAddressesFor(f, s.cfg.NodePortAddresses),
		LocalDetector:     s.local,
		MasqueradeAll:     s.cfg.IPTables.MasqueradeAll,
		MasqueradeBit:     int(*s.cfg.IPTables.MasqueradeBit),
		IPTablesBackend:   s.backend,
		Metrics:           s.metrics,
	}
}

// userspaceOptions maps the configuration onto the userspace mode's options.
func userspaceOptions(s modeSettings, f proxier.Family) userspace.Options {
	portRange, _ := proxyPortRange(s.cfg)
	return userspace.Options{
		Family:            f,
		NodePortAddresses: proxier.NodePortAddressesFor(f, s.cfg.NodePortAddresses),
		LocalDetector:     s.local,
		Registerer:        s.registerer,
		PortRange:         portRange, // validated with the configuration
		UDPIdleTimeout:    s.userspace.UDPIdleTimeout,
		TCPIdleTimeout:    s.userspace.TCPIdleTimeout,
		DrainTimeout:      s.userspace.DrainTimeout,
		IPTablesBackend:   s.backend,
		Metrics:           s.metrics,
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
		case ModeIPVS:
			p, err = ipvs.New(ipvsOptions(s, f))
		case ModeUserspace:
			p, err = userspace.New(userspaceOptions(s, f))
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

// cleanupAll removes what every mode created, for both families and in
// every iptables backend given (a node may have switched backends), in
// this network namespace. Each step runs even if an earlier one failed.
func cleanupAll(ctx context.Context, s modeSettings, backends []xtables.Backend) error {
	// A second pass when the first failed: with both the iptables and the
	// ipvs mode's rules in place, the first pass unties what references
	// the other's chains (see cleanupLeftovers); likewise an ipset still
	// used by a rule of the backend cleaned after it.
	err := cleanupAllOnce(ctx, s, backends)
	if err != nil {
		klog.V(1).InfoS("Cleanup incomplete, trying again", "err", err)
		err = cleanupAllOnce(ctx, s, backends)
	}
	return err
}

func cleanupAllOnce(ctx context.Context, s modeSettings, backends []xtables.Backend) error {
	var errs []error
	for _, f := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
		for _, m := range []struct {
			mode    string
			cleanup func(s modeSettings) error
		}{
			// iptables first: ipvs shares its KUBE-* chain names and cannot
			// delete them while the iptables mode's rules jump to them;
			// once the chains are gone, ipvs removes what is its alone
			// (virtual servers, kube-ipvs0, ipsets no rule references).
			{ModeIPTables, func(s modeSettings) error { return iptables.Cleanup(ctx, iptablesOptions(s, f)) }},
			{ModeUserspace, func(s modeSettings) error { return userspace.Cleanup(ctx, userspaceOptions(s, f)) }},
			{ModeIPVS, func(s modeSettings) error { return ipvs.Cleanup(ctx, ipvsOptions(s, f)) }},
		} {
			for _, b := range backends {
				s.backend = b
				err := m.cleanup(s)
				if errors.Is(err, exec.ErrNotFound) {
					klog.InfoS("Tools for this family missing, nothing to clean up", "mode", m.mode, "ipFamily", f, "backend", b, "err", err)
					err = nil
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s %s cleanup (%s): %w", m.mode, f, b, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}
