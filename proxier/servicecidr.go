package proxier

import (
	"fmt"
	"net/netip"
	"slices"

	networking "k8s.io/api/networking/v1"
)

// OnServiceCIDR records a ServiceCIDR add (old nil), update, or delete
// (cur nil). The ranges of every ServiceCIDR object, per family, reach
// each snapshot's ServiceCIDRs; kube-proxy's nftables mode drops traffic
// to the addresses in them that no Service holds. A range that does not
// parse is skipped and reported.
func (t *Tracker) OnServiceCIDR(old, cur *networking.ServiceCIDR) {
	obj := cur
	if obj == nil {
		obj = old
	}
	if obj == nil {
		return
	}
	var ranges []netip.Prefix
	if cur != nil {
		var errs []error
		ranges, errs = parseServiceCIDRs(cur.Spec.CIDRs)
		t.report("ServiceCIDR", cur.Name, errs)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ranges == nil {
		delete(t.serviceCIDRs, obj.Name)
	} else {
		t.serviceCIDRs[obj.Name] = ranges
	}
}

// parseServiceCIDRs parses a ServiceCIDR's ranges, masked as the API
// server validates them; the bad ones come back as errors.
func parseServiceCIDRs(cidrs []string) ([]netip.Prefix, []error) {
	out := []netip.Prefix{}
	var errs []error
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("range %q: %w", c, err))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errs
}

// serviceCIDRsOf returns the ranges of family f from every ServiceCIDR,
// sorted and without repeats. Called with t.mu held.
func (t *Tracker) serviceCIDRsOf(f Family) []netip.Prefix {
	var out []netip.Prefix
	for _, ranges := range t.serviceCIDRs {
		for _, p := range ranges {
			if FamilyOf(p.Addr()) == f {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, comparePrefixes)
	return slices.Compact(out)
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
