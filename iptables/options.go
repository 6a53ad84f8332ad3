package iptables

import (
	"context"
	"fmt"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Options configures the iptables mode for one IP family. The zero value
// of every field except Family is a sensible default.
type Options struct {
	// Family is the IP family this Proxier programs (iptables or ip6tables).
	Family proxier.Family
	// MasqueradeBit is the fwmark bit KUBE-MARK-MASQ sets (1-31). 0 means
	// the default, 14 (0x4000), so bit 0 itself cannot be chosen.
	MasqueradeBit int
	// MasqueradeAll masquerades all traffic to ClusterIPs.
	MasqueradeAll bool
	// LocalDetector tells pod traffic from other traffic
	// (--detect-local-mode); the zero value detects nothing.
	LocalDetector proxier.LocalDetector
	// NodePortAddresses restricts the addresses NodePorts answer on: CIDRs
	// of this family or the keyword "primary" (the node's first IP). Empty
	// means every local address (-m addrtype --dst-type LOCAL).
	NodePortAddresses []string
	// LocalhostNodePorts makes NodePorts answer on 127.0.0.0/8 (IPv4 only).
	// Off by default in kproxy; when on, the anti-martian KUBE-FIREWALL rule
	// is added and route_localnet is set in the node's namespace.
	LocalhostNodePorts bool
	// TCPBeLiberal is true when nf_conntrack_tcp_be_liberal is set: then
	// KUBE-FORWARD does not drop ctstate INVALID packets.
	TCPBeLiberal bool
	// Metrics are the iptables-named metrics the sync loop records this
	// mode's syncs in (rule counts, restore failures); nil means none.
	Metrics *xtables.Metrics
	// Backend chooses the iptables flavour: "legacy", "nft", or "" to use
	// what the host's iptables binary uses.
	Backend string
	// Kernel is the seam to iptables. Nil means the iptables binaries of
	// the process's own network namespace (xtables.NewRunner). Tests pass a
	// Fake, or an xtables.Runner bound to a test namespace.
	Kernel Kernel

	// bucketMin overrides defaultBucketMin (tests force the bucketed
	// layout with 1).
	bucketMin int
}

// normalized validates the options and fills in defaults.
func (o Options) normalized() (Options, error) {
	if err := proxier.CheckFamily(o.Family); err != nil {
		return o, fmt.Errorf("iptables: %w", err)
	}
	var err error
	if o.MasqueradeBit, err = proxier.MasqueradeBitOrDefault(o.MasqueradeBit); err != nil {
		return o, fmt.Errorf("iptables: %w", err)
	}
	o.LocalDetector = o.LocalDetector.ForFamily(o.Family)
	if err := proxier.ValidateNodePortAddresses(o.NodePortAddresses); err != nil {
		return o, fmt.Errorf("iptables: %w", err)
	}
	switch o.Backend {
	case "", "legacy", "nft":
	default:
		return o, fmt.Errorf("iptables: unknown backend %q (want legacy, nft or empty)", o.Backend)
	}
	if o.bucketMin <= 0 {
		o.bucketMin = defaultBucketMin
	}
	if o.Family == proxier.IPv6 {
		o.LocalhostNodePorts = false // IPv6 has no route_localnet
	}
	return o, nil
}

// kernel returns the configured seam, or the real binaries.
func (o Options) kernel() (Kernel, error) {
	if o.Kernel != nil {
		return o.Kernel, nil
	}
	return xtables.NewRunner(xtables.RunnerConfig{Family: o.Family, Backend: xtables.Backend(o.Backend)})
}

// Cleanup removes every chain and jump rule kproxy's iptables mode creates
// for opts.Family, in the current network namespace (or opts.Kernel's).
// It works without a running Proxier, is idempotent, and never touches
// chains outside kproxy's (kube-proxy's) names.
func Cleanup(ctx context.Context, opts Options) error {
	opts, err := opts.normalized()
	if err != nil {
		return err
	}
	k, err := opts.kernel()
	if err != nil {
		return err
	}
	return cleanup(ctx, k)
}

// HasLeftovers reports whether the iptables mode's own chains are there:
// a per-Service chain or a KUBE-PROXY-CANARY in nat or filter (the ipvs
// mode shares the other names, not these).
func HasLeftovers(ctx context.Context, opts Options) (bool, error) {
	opts, err := opts.normalized()
	if err != nil {
		return false, err
	}
	k, err := opts.kernel()
	if err != nil {
		return false, err
	}
	for _, table := range []string{tableNAT, tableFilter} {
		chains, err := xtables.SavedChains(ctx, k, table)
		if err != nil {
			return false, err
		}
		for _, chain := range chains {
			if deletableChain(chain) || chain == chainCanary {
				return true, nil
			}
		}
	}
	return false, nil
}
