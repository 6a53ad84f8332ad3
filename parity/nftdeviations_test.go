package parity

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// nftDeviations is the whole list for nftables mode. Anything else that
// differs is a bug.
var nftDeviations = []deviation{
	failClosed,
	{
		name:     "a destination two Services claim goes to the first by name",
		readme:   "the first Service by name keeps it",
		services: contestingServices,
	},
	{
		name:           "one numgen rule per endpoint instead of an inline numgen map",
		readme:         "one `numgen random mod K 0` rule per endpoint",
		normalizeChain: testrig.NeutralEndpointChoice,
	},
}

// contestingServices are the Services ("ns/name") that claim an external
// or load balancer IP, protocol and port of family with another one; they
// are left out whole (the losers' chains stay, with nothing leading to
// them). kube-proxy's nftables mode writes every claimant's element in
// turn, in map order, so the last one written wins, anew at every sync.
func contestingServices(svcs []*v1.Service, family v1.IPFamily) []string {
	claims := map[string]map[string]bool{}
	for _, s := range svcs {
		var ips []string
		ips = append(ips, s.Spec.ExternalIPs...)
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		for _, ip := range ips {
			a, err := netip.ParseAddr(ip)
			if err != nil || a.Is4() != (family == v1.IPv4Protocol) {
				continue
			}
			for _, p := range s.Spec.Ports {
				key := fmt.Sprintf("%s . %s . %d", a, strings.ToLower(string(p.Protocol)), p.Port)
				if claims[key] == nil {
					claims[key] = map[string]bool{}
				}
				claims[key][s.Namespace+"/"+s.Name] = true
			}
		}
	}
	var out []string
	for _, by := range claims {
		if len(by) > 1 {
			for name := range by {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
