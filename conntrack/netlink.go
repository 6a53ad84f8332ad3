package conntrack

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kproxy/kproxy/proxier"
)

// NetlinkTable is the kernel's conntrack table, reached over netlink. Its
// sockets are opened on first use, in the namespace given to
// NewNetlinkTable, and kept until Close.
type NetlinkTable struct {
	ns *netns.NsHandle

	mu     sync.Mutex
	handle *netlink.Handle
}

var _ Table = (*NetlinkTable)(nil)

// NewNetlinkTable returns the conntrack table of network namespace ns, or
// of the process's current namespace when ns is nil (production). It opens
// nothing yet.
func NewNetlinkTable(ns *netns.NsHandle) *NetlinkTable { return &NetlinkTable{ns: ns} }

func (t *NetlinkTable) open() (*netlink.Handle, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle != nil {
		return t.handle, nil
	}
	var (
		h   *netlink.Handle
		err error
	)
	if t.ns == nil {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(*t.ns, unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("open netlink sockets: %w", err)
	}
	t.handle = h
	return h, nil
}

// DeleteFlows implements Table with one dump of the table: netlink's
// ConntrackDeleteFilters calls our filter for every flow it reads and
// deletes the matches one by one.
func (t *NetlinkTable) DeleteFlows(family proxier.Family, match func(*netlink.ConntrackFlow) bool) (int, error) {
	h, err := t.open()
	if err != nil {
		return 0, err
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, inetFamily(family), filterFunc(match))
	if err != nil {
		return int(n), fmt.Errorf("delete conntrack flows: %w", err)
	}
	return int(n), nil
}

// LocalAddrs implements Table.
func (t *NetlinkTable) LocalAddrs(family proxier.Family) ([]netip.Addr, error) {
	h, err := t.open()
	if err != nil {
		return nil, err
	}
	nl := netlink.FAMILY_V4
	if family == proxier.IPv6 {
		nl = netlink.FAMILY_V6
	}
	addrs, err := h.AddrList(nil, nl)
	if err != nil {
		return nil, fmt.Errorf("list local addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// Close implements Table.
func (t *NetlinkTable) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handle != nil {
		t.handle.Close()
		t.handle = nil
	}
	return nil
}

// filterFunc adapts a function to netlink.CustomConntrackFilter.
type filterFunc func(*netlink.ConntrackFlow) bool

func (f filterFunc) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool { return f(flow) }
