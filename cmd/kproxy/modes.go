package main

import (
	"context"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/iptables"
	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/nftables"
	"github.com/kproxy/kproxy/proxier"
	"github.com/kproxy/kproxy/userspace"
)

// Proxy modes (--proxy-mode).
const (
	ModeIPTables  = "iptables"
	ModeIPVS      = "ipvs"
	ModeUserspace = "userspace"
	ModeNFTables  = "nftables"

	// defaultMode is kproxy's default on every platform (kube-proxy's
	// on Linux).
	defaultMode = ModeIPTables
)

// modeTable is the one place cmd/kproxy learns the proxy modes from:
// creation, "kproxy render", --cleanup, leftover removal at start,
// validation, flag help and the start-up kernel checks all read it. The
// order is the one the flag help and errors list. Adding a mode is its
// package plus one entry here, with its options mapping below (README,
// "Adding a mode"); the fields are documented on mode (modetable.go).
var modeTable = []mode{
	{
		Name:         ModeIPTables,
		modeFuncs:    bindMode(iptablesOptions, iptables.New, iptables.Render, iptables.Cleanup),
		HasLeftovers: iptablesHasLeftovers,
		SyncSection:  "iptables",
		SyncPeriods:  iptablesSyncPeriods,
		SyncFlags:    "iptables",
		UnNATedTCP:   true,
		Needs:        onlyIPTables,
		SharedChains: true,
	},
	{
		Name:         ModeIPVS,
		modeFuncs:    bindMode(ipvsOptions, ipvs.New, ipvs.Render, ipvs.Cleanup),
		HasLeftovers: ipvsInterfaceExists,
		SyncSection:  "ipvs",
		SyncPeriods:  ipvsSyncPeriods,
		SyncFlags:    "ipvs",
		UnNATedTCP:   false, // IPVS translates by itself: its entries may look untranslated
		Needs: func(b xtables.Backend) []requirement {
			return []requirement{needIPVS, needIPSet, needIPTables(b)}
		},
		SharedChains: true,
		NodeWide:     true, // kube-ipvs0
	},
	{
		Name:         ModeUserspace,
		modeFuncs:    bindMode(userspaceOptions, userspace.New, userspace.Render, userspace.Cleanup),
		HasLeftovers: alwaysClean,
		SyncSection:  "iptables", // no section of its own in KubeProxyConfiguration
		SyncPeriods:  iptablesSyncPeriods,
		SyncFlags:    "iptables",
		UnNATedTCP:   true,
		Needs:        onlyIPTables,
	},
	{
		Name:         ModeNFTables,
		modeFuncs:    bindMode(nftablesOptions, nftables.New, nftables.Render, nftables.Cleanup),
		HasLeftovers: nftablesHasLeftovers,
		SyncSection:  "nftables",
		SyncPeriods:  nftablesSyncPeriods,
		SyncFlags:    "iptables", // applyNFTablesFlags
		UnNATedTCP:   true,
		Needs:        func(xtables.Backend) []requirement { return []requirement{needNFTables} },
	},
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

// iptablesHasLeftovers: the iptables mode's own chains (per-Service ones,
// the canaries) are there, not only the names it shares with ipvs.
func iptablesHasLeftovers(ctx context.Context, s modeSettings, f proxier.Family) (bool, error) {
	return iptables.HasLeftovers(ctx, iptablesOptions(s, f))
}

func iptablesSyncPeriods(c *Config) (minSync, sync time.Duration) {
	return c.IPTables.MinSyncPeriod.Duration, c.IPTables.SyncPeriod.Duration
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

// ipvsInterfaceExists: kube-ipvs0, the sign of a previous ipvs run, is
// there (for every family: one interface serves both).
func ipvsInterfaceExists(context.Context, modeSettings, proxier.Family) (bool, error) {
	_, err := netlink.LinkByName(ipvs.Interface)
	return err == nil, nil
}

func ipvsSyncPeriods(c *Config) (minSync, sync time.Duration) {
	return c.IPVS.MinSyncPeriod.Duration, c.IPVS.SyncPeriod.Duration
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

// alwaysClean is the HasLeftovers of a mode whose chains are its own
// (KPROXY-US-*): deleting them is the cheapest way to look for them.
func alwaysClean(context.Context, modeSettings, proxier.Family) (bool, error) {
	return true, nil
}

// nftablesOptions maps the configuration onto the nftables mode's
// options: its own section for the mark bit, masquerade-all and the sync
// periods (applyNFTablesFlags puts kube-proxy's flags there), and
// "primary" NodePort addresses unless some are set (nftablesDefaults).
func nftablesOptions(s modeSettings, f proxier.Family) nftables.Options {
	return nftables.Options{
		Family:            f,
		MasqueradeBit:     int(*s.cfg.NFTables.MasqueradeBit),
		MasqueradeAll:     s.cfg.NFTables.MasqueradeAll,
		LocalDetector:     s.local,
		NodePortAddresses: proxier.NodePortAddressesFor(f, s.cfg.NodePortAddresses),
		Metrics:           nftables.NewMetrics(s.registerer),
	}
}

// nftablesHasLeftovers: the kube-proxy table of family f exists.
func nftablesHasLeftovers(ctx context.Context, s modeSettings, f proxier.Family) (bool, error) {
	return nftables.HasLeftovers(ctx, nftablesOptions(s, f))
}

func nftablesSyncPeriods(c *Config) (minSync, sync time.Duration) {
	return c.NFTables.MinSyncPeriod.Duration, c.NFTables.SyncPeriod.Duration
}
