package testrig

import "strings"

// IsOwnChain reports whether an iptables chain name is one kproxy owns:
// KUBE-* (the names it shares with kube-proxy) or KPROXY-* (its own, such
// as the KPROXY-SVCS-* dispatch buckets and the userspace mode's chains).
// Kernel comparisons and leftover checks must look at both prefixes, or
// a stale bucket chain goes unseen.
func IsOwnChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "KPROXY-")
}

// MentionsOwnChain reports whether an iptables-save line declares, appends
// to or jumps to a chain kproxy owns.
func MentionsOwnChain(line string) bool {
	return strings.Contains(line, "KUBE-") || strings.Contains(line, "KPROXY-")
}
