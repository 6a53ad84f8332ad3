package ipvs

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// Options configures the ipvs mode for one IP family. Flags map as:
//
//	--ipvs-scheduler         Scheduler
//	--ipvs-tcp-timeout       TCPTimeout
//	--ipvs-tcpfin-timeout    TCPFinTimeout
//	--ipvs-udp-timeout       UDPTimeout
//	--ipvs-strict-arp        StrictARP
//	--ipvs-exclude-cidrs     ExcludeCIDRs
//	--nodeport-addresses     NodePortAddresses
//	--detect-local-mode      LocalDetector (with --cluster-cidr, ...)
//	--masquerade-all         MasqueradeAll
//	--iptables-masquerade-bit MasqueradeBit
//
// --ipvs-sync-period and --ipvs-min-sync-period go to proxier.LoopOptions
// (SyncPeriod, MinSyncPeriod): the loop, not the backend, owns timing.
type Options struct {
	// Family is the IP family this Proxier programs.
	Family proxier.Family
	// Scheduler is the IPVS scheduler of every virtual server ("rr" when
	// empty; wrr, lc, wlc, sh, mh, ... whatever the kernel offers).
	Scheduler string
	// TCPTimeout, TCPFinTimeout, UDPTimeout are IPVS's connection timeouts
	// (ipvsadm --set); 0 leaves the kernel's value.
	TCPTimeout, TCPFinTimeout, UDPTimeout time.Duration
	// StrictARP sets arp_ignore=1 and arp_announce=2 so that the node does
	// not answer ARP for the addresses on kube-ipvs0.
	StrictARP bool
	// ExcludeCIDRs: virtual servers and addresses in these ranges are never
	// removed by kproxy, even when they look stale.
	ExcludeCIDRs []netip.Prefix
	// NodePortAddresses restricts the addresses NodePorts answer on: CIDRs
	// of this family or the keyword "primary" (the Node object's first
	// address, when it is a local one). Empty means every address of the
	// node's interfaces except kube-ipvs0's, loopback and link-local ones
	// (Render, which has no kernel, uses the Node object's addresses
	// instead).
	NodePortAddresses []string
	// NodePortRange is the Service node port range; virtual servers on a
	// node address are only considered kproxy's when their port is in it.
	// Zero means 30000-32767.
	NodePortRange [2]uint16
	// LocalDetector tells pod traffic from other traffic; traffic to a
	// ClusterIP that is not local is masqueraded. The zero value detects
	// nothing (only MasqueradeAll masquerades ClusterIP traffic, hairpin
	// always does).
	LocalDetector proxier.LocalDetector
	// MasqueradeAll masquerades all traffic to ClusterIPs.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit KUBE-MARK-MASQ sets; 0 means 14.
	MasqueradeBit int
	// DrainTimeout bounds graceful termination: a removed TCP real server
	// keeps weight 0 until its connections are gone or this much time has
	// passed. 0 means 15 minutes.
	DrainTimeout time.Duration
	// IPTablesBackend selects the iptables binaries the default Kernel
	// runs (xtables.Plain: "iptables").
	IPTablesBackend xtables.Backend
	// Metrics are the iptables-named metrics the sync loop records this
	// mode's syncs in (SyncResult.Rules and Written, restore failures);
	// nil means none.
	Metrics *xtables.Metrics
	// Kernel is the seam to the kernel. Nil means the real one, in the
	// process's network namespace, with IPTablesBackend's binaries.
	Kernel Kernel
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Interface is the dummy interface Service addresses are bound to.
const Interface = "kube-ipvs0"

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if c.Family == "" {
		c.Family = proxier.IPv4
	}
	if err := proxier.CheckFamily(c.Family); err != nil {
		return c, fmt.Errorf("ipvs: %w", err)
	}
	if c.Scheduler == "" {
		c.Scheduler = "rr"
	}
	var err error
	if c.MasqueradeBit, err = proxier.MasqueradeBitOrDefault(c.MasqueradeBit); err != nil {
		return c, fmt.Errorf("ipvs: %w", err)
	}
	if c.NodePortRange == [2]uint16{} {
		c.NodePortRange = [2]uint16{30000, 32767}
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 15 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := proxier.ValidateNodePortAddresses(c.NodePortAddresses); err != nil {
		return c, fmt.Errorf("ipvs: %w", err)
	}
	return c, nil
}

func (o *Options) excluded(a netip.Addr) bool {
	for _, p := range o.ExcludeCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (o *Options) masqMark() string {
	return fmt.Sprintf("0x%x", uint32(1)<<o.MasqueradeBit)
}
