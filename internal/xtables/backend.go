// Package xtables decides which iptables backend kproxy's modes write to —
// legacy (x_tables) or nft (nf_tables) — and names that backend's
// binaries. It does inside kproxy what kubernetes-sigs' iptables-wrapper
// does in kube-proxy's image: the backend that already holds the node's
// rules (kubelet's hint chains, the CNI's rules, an earlier kproxy or
// kube-proxy) wins, nft when both are empty. Rules written to the other
// backend would be evaluated too, but in an order nobody chose.
//
// Choose is the pure decision; Select runs the iptables-save commands it
// needs (through an Env, which tests bind to a network namespace).
//
// It also holds what the modes that write iptables rules (iptables, ipvs,
// userspace) share: IfLocal renders the core's local-traffic detector as
// iptables matches, and Metrics are kube-proxy's iptables-named metrics.
package xtables

import (
	"fmt"

	"github.com/kproxy/kproxy/proxier"
)

// Backend is an iptables backend.
type Backend string

const (
	// Auto asks Select to detect the backend; it is never a choice.
	Auto Backend = "auto"
	// Legacy is x_tables, through the iptables-legacy* binaries.
	Legacy Backend = "legacy"
	// NFT is nf_tables, through the iptables-nft* binaries.
	NFT Backend = "nft"
	// Plain is whatever the plain "iptables" binaries are: used when the
	// host has no -legacy / -nft variants.
	Plain Backend = ""
)

// ParseBackend parses a requested backend: auto, legacy or nft.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case Auto, Legacy, NFT:
		return b, nil
	}
	return "", fmt.Errorf("iptables backend %q: must be one of auto, legacy, nft", s)
}

// String names the backend in logs.
func (b Backend) String() string {
	if b == Plain {
		return "iptables"
	}
	return string(b)
}

// Binary is the name of one iptables tool of a family and backend: tool
// is "" (iptables), "-save" or "-restore"; e.g. Binary(IPv6, NFT,
// "-save") is "ip6tables-nft-save".
func Binary(f proxier.Family, b Backend, tool string) string {
	name := "iptables"
	if f == proxier.IPv6 {
		name = "ip6tables"
	}
	if b == Legacy || b == NFT {
		name += "-" + string(b)
	}
	return name + tool
}
