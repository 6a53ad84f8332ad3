package xtables

import "net/netip"

// HostMatch is an address as iptables-save prints a single-host match:
// "a/32" or "a/128". Rules are rendered in save form, so that what a mode
// writes compares equal with what it reads back.
func HostMatch(a netip.Addr) string {
	if a.Is4() {
		return a.String() + "/32"
	}
	return a.String() + "/128"
}
