package proxier

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// NodePortAddressPrimary is the --nodeport-addresses keyword for the
// node's primary IP of each family.
const NodePortAddressPrimary = "primary"

// NodePortAddressesFor returns the --nodeport-addresses entries that apply
// to one IP family, as kube-proxy reads them: CIDRs of that family and the
// "primary" keyword are kept, other families' CIDRs dropped. An empty
// result, or one with a zero CIDR (0.0.0.0/0, ::/0), means every local
// address and is returned as nil. Entries are assumed validated.
func NodePortAddressesFor(family Family, entries []string) []string {
	var out []string
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == NodePortAddressPrimary {
			out = append(out, e)
			continue
		}
		p, err := netip.ParsePrefix(e)
		if err != nil || FamilyOf(p.Addr()) != family {
			continue
		}
		if p.Bits() == 0 {
			return nil
		}
		out = append(out, p.Masked().String())
	}
	return out
}

// WithPrimary returns one family's entries (from NodePortAddressesFor)
// with "primary" left out when the node has no address of that family
// (primary not valid), as kube-proxy turns "primary" into the node IP of
// each family it has. If nothing is left, the result is nil: NodePorts
// answer on every address of that family, as in kube-proxy.
func WithPrimary(entries []string, primary netip.Addr) []string {
	if primary.IsValid() || !slices.Contains(entries, NodePortAddressPrimary) {
		return entries
	}
	var out []string
	for _, e := range entries {
		if e != NodePortAddressPrimary {
			out = append(out, e)
		}
	}
	return out
}

// SelectNodeAddresses returns the addresses among candidates (the node's
// interface addresses) that entries select, as NodePortAddressesFor
// returns them for one family: inside one of the CIDRs, or the primary
// address for "primary". A nil entries means every candidate. The result
// keeps the candidates' order, without repeats; it may be empty.
func SelectNodeAddresses(entries []string, primary netip.Addr, candidates []netip.Addr) []netip.Addr {
	out := []netip.Addr{}
	for _, a := range candidates {
		if slices.Contains(out, a) {
			continue
		}
		selected := entries == nil
		for _, e := range entries {
			if e == NodePortAddressPrimary {
				selected = selected || a == primary
			} else if p, err := netip.ParsePrefix(e); err == nil && p.Contains(a) {
				selected = true
			}
		}
		if selected {
			out = append(out, a)
		}
	}
	return out
}

// NodePortDest is one destination NodePort traffic is accepted on, typed
// once here so that every mode writes the same match.
type NodePortDest struct {
	// All is every local address of the node (no --nodeport-addresses
	// entry of this family); Prefix and Local are unset.
	All bool
	// Prefix holds the destination: the node's primary address as a host
	// prefix, or a --nodeport-addresses CIDR.
	Prefix netip.Prefix
	// Local is true when the destination must also be one of the node's
	// own addresses: a CIDR may hold other hosts' addresses, whose traffic
	// the node only routes and must not capture.
	Local bool
}

// NodePortDests types the --nodeport-addresses entries of one family
// (other families' CIDRs are dropped, as NodePortAddressesFor does) given
// the node's primary address of that family.
func NodePortDests(family Family, entries []string, primary netip.Addr) []NodePortDest {
	entries = WithPrimary(NodePortAddressesFor(family, entries), primary)
	if len(entries) == 0 {
		return []NodePortDest{{All: true}}
	}
	var out []NodePortDest
	for _, e := range entries {
		if e == NodePortAddressPrimary {
			out = append(out, NodePortDest{Prefix: netip.PrefixFrom(primary, primary.BitLen())})
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, NodePortDest{Prefix: p.Masked(), Local: true})
		}
	}
	return out
}

// ValidateNodePortAddresses checks --nodeport-addresses entries: each a
// CIDR or the keyword "primary".
func ValidateNodePortAddresses(entries []string) error {
	for _, a := range entries {
		if a == NodePortAddressPrimary {
			continue
		}
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("nodePortAddresses: %q is neither a CIDR nor %q", a, NodePortAddressPrimary)
		}
	}
	return nil
}
