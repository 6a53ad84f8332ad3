package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kpconfig "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// mode is one entry of modeTable (modes.go): everything cmd/kproxy knows
// about a proxy mode. Every field must be set (TestModeTableComplete).
type mode struct {
	// Name is the --proxy-mode value.
	Name string

	// New, Render and Cleanup: the mode package's entry points, given
	// the mode's Options for one family (see bindMode).
	modeFuncs

	// HasLeftovers reports whether the mode left its own signs in family
	// f (a chain no other mode writes, an interface). Leftover removal
	// asks it, before any cleanup, when a Cleanup could hurt the running
	// mode (see SharedChains and NodeWide). A mode whose Cleanup is always
	// harmless returns true.
	HasLeftovers func(ctx context.Context, s modeSettings, f proxier.Family) (bool, error)

	// SyncSection names the configuration section holding the mode's
	// sync periods, as errors name it ("ipvs": ipvs.syncPeriod,
	// --ipvs-sync-period); SyncPeriods returns them from it.
	SyncSection string
	SyncPeriods func(c *Config) (minSync, sync time.Duration)
	// SyncFlags prefixes the flags that set them ("ipvs":
	// --ipvs-sync-period); nftables has none of its own and takes the
	// iptables ones, as kube-proxy does.
	SyncFlags string

	// UnNATedTCP is conntrack.Options.UnNATedTCP: true for modes that
	// translate with conntrack's NAT.
	UnNATedTCP bool

	// Needs lists what the mode needs from the kernel, in the order the
	// start-up checks probe it (preflight.go).
	Needs func(b xtables.Backend) []requirement

	// SharedChains: the mode writes kube-proxy's chain names
	// (KUBE-SERVICES, KUBE-POSTROUTING, ...) which another such mode
	// writes too. While one runs, another's leftovers in a family it
	// proxies are removed only when that one's HasLeftovers says so: the
	// first full sync rewrites the shared chains anyway.
	SharedChains bool

	// NodeWide: the mode's Cleanup also removes what serves every family
	// (kube-ipvs0). It is cleaned after the other modes, only when its
	// HasLeftovers says so, and never while it runs (not even for a family
	// it stopped proxying).
	NodeWide bool
}

// modeFuncs are a mode package's entry points with the configuration
// mapped onto its Options.
type modeFuncs struct {
	// New builds the mode's Proxier for one family; like every
	// constructor here it writes nothing to the kernel.
	New func(s modeSettings, f proxier.Family) (proxier.Proxier, error)
	// Render is the pure render of a full sync of snap (family f).
	Render func(s modeSettings, snap *proxier.Snapshot, f proxier.Family) (string, error)
	// Cleanup removes what the mode created in family f, with s.backend,
	// without a running Proxier; it is idempotent.
	Cleanup func(ctx context.Context, s modeSettings, f proxier.Family) error
}

// bindMode builds a mode's modeFuncs from its package's New, Render and
// Cleanup and from options, which maps the configuration onto the
// package's Options (O). P is the package's Proxier type.
func bindMode[O any, P proxier.Proxier](
	options func(modeSettings, proxier.Family) O,
	newProxier func(O) (P, error),
	render func(*proxier.Snapshot, O) (string, error),
	cleanup func(context.Context, O) error,
) modeFuncs {
	return modeFuncs{
		New: func(s modeSettings, f proxier.Family) (proxier.Proxier, error) {
			p, err := newProxier(options(s, f))
			if err != nil {
				return nil, err // not a typed nil in an interface
			}
			return p, nil
		},
		Render: func(s modeSettings, snap *proxier.Snapshot, f proxier.Family) (string, error) {
			return render(snap, options(s, f))
		},
		Cleanup: func(ctx context.Context, s modeSettings, f proxier.Family) error {
			return cleanup(ctx, options(s, f))
		},
	}
}

// modeSettings is what a mode's options mapping reads besides the family.
type modeSettings struct {
	cfg          *Config
	local        proxier.LocalDetector
	metrics      *xtables.Metrics      // every mode writes iptables rules; nil: none
	registerer   prometheus.Registerer // userspace mode's per-service metrics; nil: none
	tcpBeLiberal bool                  // nf_conntrack_tcp_be_liberal is (or will be) 1
	userspace    UserspaceFlags
	backend      xtables.Backend // the iptables binaries every mode runs
}

// errModeNotBuilt is returned for a mode whose package is not in this
// binary yet.
var errModeNotBuilt = errors.New("mode not available in this build")

// modeNamed is the entry of --proxy-mode=name in modeTable.
func modeNamed(name kpconfig.ProxyMode) (*mode, bool) {
	return findMode(modeTable, name)
}

func findMode(table []mode, name kpconfig.ProxyMode) (*mode, bool) {
	for i := range table {
		if table[i].Name == string(name) {
			return &table[i], true
		}
	}
	return nil, false
}

// modeNames lists the modes in table order.
func modeNames() []string {
	names := make([]string, len(modeTable))
	for i, m := range modeTable {
		names[i] = m.Name
	}
	return names
}

// modeChoices lists the modes for the flag help: "a, b or c".
func modeChoices() string {
	names := modeNames()
	last := len(names) - 1
	if last < 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:last], ", ") + " or " + names[last]
}

// newBackends builds one Proxier per family for the configured mode. Like
// every constructor here it writes nothing to the kernel.
func newBackends(s modeSettings, families []proxier.Family) (map[proxier.Family]proxier.Proxier, error) {
	m, known := modeNamed(s.cfg.Mode)
	out := map[proxier.Family]proxier.Proxier{}
	for _, f := range families {
		if !known {
			return nil, fmt.Errorf("%s %s backend: unknown proxy mode %q", s.cfg.Mode, f, s.cfg.Mode)
		}
		p, err := m.New(s, f)
		if err != nil {
			return nil, fmt.Errorf("%s %s backend: %w", s.cfg.Mode, f, err)
		}
		out[f] = p
	}
	return out, nil
}
