package conntrack

import (
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/kproxy/kproxy/proxier"
)

// Table is the seam to the kernel's conntrack table of one network
// namespace. NetlinkTable is the real one, FakeTable the fake.
type Table interface {
	// DeleteFlows dumps the family's conntrack table once and deletes
	// every flow match returns true for. It returns how many were deleted
	// (including those that vanished on their own meanwhile). When the dump
	// is interrupted it still deletes the matches it saw and returns an
	// error wrapping netlink.ErrDumpInterrupted; when single deletions fail
	// it carries on and returns an error for them at the end.
	DeleteFlows(family proxier.Family, match func(*netlink.ConntrackFlow) bool) (int, error)
	// LocalAddrs returns the addresses of the family on the namespace's
	// interfaces (including loopback).
	LocalAddrs(family proxier.Family) ([]netip.Addr, error)
	// Close releases the table's sockets.
	Close() error
}

// inetFamily maps an IP family to netlink's.
func inetFamily(f proxier.Family) netlink.InetFamily {
	if f == proxier.IPv6 {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}
