package testrig

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ConntrackEntry is one IPv4 UDP conntrack entry of a test namespace, as
// the fault tests look at it.
type ConntrackEntry struct {
	// Src and Dst are the original direction (client → service address).
	Src, Dst netip.AddrPort
	// ReplySrc is where replies come from: the endpoint after DNAT, the
	// node's listener after a REDIRECT, Dst itself when not translated.
	ReplySrc netip.AddrPort
	// Mark is the entry's conntrack mark (see MarkConntrack).
	Mark uint32

	flow *netlink.ConntrackFlow
}

func (e ConntrackEntry) String() string {
	return fmt.Sprintf("%s → %s, reply from %s, mark %#x", e.Src, e.Dst, e.ReplySrc, e.Mark)
}

// UDPConntrack lists the IPv4 UDP conntrack entries of ns whose original
// destination is dst.
func UDPConntrack(ns string, dst netip.AddrPort) ([]ConntrackEntry, error) {
	var out []ConntrackEntry
	err := withConntrack(ns, func(h *netlink.Handle) error {
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("list conntrack of %s: %w", ns, err)
		}
		for _, f := range flows {
			e := ConntrackEntry{Src: tupleAddr(f.Forward.SrcIP, f.Forward.SrcPort), Dst: tupleAddr(f.Forward.DstIP, f.Forward.DstPort),
				ReplySrc: tupleAddr(f.Reverse.SrcIP, f.Reverse.SrcPort), Mark: f.Mark, flow: f}
			if f.Forward.Protocol == unix.IPPROTO_UDP && e.Dst == dst {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// MarkConntrack sets the conntrack mark of entry e in ns, and its timeout.
// A test marks the entries it wants to follow: an entry deleted and made
// again by the next packet has mark 0, so a mark still there proves the
// entry was kept; the timeout keeps it from expiring on its own meanwhile.
func MarkConntrack(ns string, e ConntrackEntry, mark uint32, timeout time.Duration) error {
	f := *e.flow
	f.Mark, f.TimeOut = mark, uint32(timeout.Seconds())
	return withConntrack(ns, func(h *netlink.Handle) error {
		if err := h.ConntrackUpdate(netlink.ConntrackTable, netlink.FAMILY_V4, &f); err != nil {
			return fmt.Errorf("mark conntrack entry %s in %s: %w", e, ns, err)
		}
		return nil
	})
}

// withConntrack runs fn with a netfilter netlink handle in ns (a name or
// a path, such as /proc/1/ns/net for a VM's own namespace): the socket is
// opened inside ns, so it stays there.
func withConntrack(ns string, fn func(*netlink.Handle) error) error {
	var h *netlink.Handle
	if err := DoInNetns(ns, func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
		return err
	}); err != nil {
		return fmt.Errorf("netlink in %s: %w", ns, err)
	}
	defer h.Close()
	return fn(h)
}

func tupleAddr(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
