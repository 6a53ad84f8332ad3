package conntrack

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// Options configures a Cleaner.
type Options struct {
	// Family is the IP family whose table is cleaned.
	Family proxier.Family
	// Netns is the network namespace whose table is cleaned; nil means the
	// process's own (production). Kernel tests pass a test namespace.
	Netns *netns.NsHandle
	// Table replaces the kernel; nil means NewNetlinkTable(Netns).
	Table Table
	// UnNATedTCP also deletes the TCP entries of connections opened to a
	// service address before its rules existed (see unnated.go). Only for
	// modes that translate with conntrack (iptables, userspace): IPVS does
	// its own translation, so its entries may legitimately look untranslated.
	UnNATedTCP bool
}

// Cleaner deletes stale UDP conntrack entries of one IP family after each
// sync. It implements proxier.StaleFlowCleaner.
type Cleaner struct {
	family proxier.Family
	table  Table
	seen   *seenServices
}

var _ proxier.StaleFlowCleaner = (*Cleaner)(nil)

// New returns a Cleaner. It opens no socket until the first clean-up.
func New(opts Options) (*Cleaner, error) {
	switch opts.Family {
	case proxier.IPv4, proxier.IPv6:
	default:
		return nil, fmt.Errorf("conntrack: unknown IP family %q", opts.Family)
	}
	t := opts.Table
	if t == nil {
		t = NewNetlinkTable(opts.Netns)
	}
	return &Cleaner{family: opts.Family, table: t, seen: newSeenServices(opts.UnNATedTCP)}, nil
}

// CleanStaleFlows deletes the UDP entries whose original destination is a
// service address of snap but whose reply source is neither one of the
// port's serving endpoints (see the package doc) nor the node's own
// listener that redirects says the address goes to (userspace mode), and
// with UnNATedTCP the untranslated TCP entries to service addresses new
// since the last call. It dumps the table at most once, and not at all
// when there is nothing to look for. It returns the number of entries
// deleted, also when it fails part way.
func (c *Cleaner) CleanStaleFlows(ctx context.Context, snap *proxier.Snapshot, redirects proxier.Redirects) (int, error) {
	if snap != nil && snap.Family != c.family {
		return 0, fmt.Errorf("conntrack %s: snapshot is of family %s", c.family, snap.Family)
	}
	if snap == nil {
		return 0, nil
	}
	c.seen.update(snap)
	x := newIndex(c.seen.udpSnapshot(c.family), redirects)
	fresh := c.seen.added // empty unless UnNATedTCP
	if x.empty() && len(fresh) == 0 {
		return 0, nil
	}
	if x.needsLocal() {
		addrs, err := c.table.LocalAddrs(c.family)
		if err != nil {
			return 0, fmt.Errorf("conntrack %s: %w", c.family, err)
		}
		x.withLocal(addrs)
	}
	logger := klog.FromContext(ctx)
	n, err := c.table.DeleteFlows(c.family, func(f *netlink.ConntrackFlow) bool {
		if !x.stale(f) && !unNATedTCP(f, fresh) {
			return false
		}
		if v := logger.V(4); v.Enabled() {
			v.Info("Deleting stale conntrack entry", "ipFamily", c.family, "flow", f.String())
		}
		return true
	})
	if n > 0 {
		logger.V(2).Info("Deleted stale conntrack entries", "ipFamily", c.family, "deleted", n)
	}
	if err != nil {
		// The new addresses stay new: the next clean-up looks again.
		return n, fmt.Errorf("conntrack %s: %w", c.family, err)
	}
	clear(c.seen.added)
	return n, nil
}

// Close releases the Cleaner's netlink sockets.
func (c *Cleaner) Close() error { return c.table.Close() }
