package ipvs

import (
	"context"
	"net/netip"
	"slices"

	"github.com/kproxy/kproxy/proxier"
)

// ListNodeAddrs returns the family's addresses on every interface of the
// proxy's namespace except kube-ipvs0, without loopback and link-local
// addresses: where NodePorts answer when --nodeport-addresses is empty
// (as upstream's ipvs mode: all local addresses minus kube-ipvs0's).
func (r *realKernel) ListNodeAddrs(ctx context.Context) ([]netip.Addr, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	skip := -1
	if l, err := r.nl.LinkByName(Interface); err == nil {
		skip = l.Attrs().Index
	}
	addrs, err := r.nl.AddrList(nil, r.nlFamily())
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if a.LinkIndex == skip {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		if r.family == proxier.IPv4 {
			ip = ip.Unmap()
		}
		if usableNodeAddr(ip, r.family) && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

func usableNodeAddr(ip netip.Addr, f proxier.Family) bool {
	return proxier.FamilyOf(ip) == f && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified()
}
