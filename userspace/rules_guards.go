package userspace

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// multiportMax is how many ports one multiport match takes.
const multiportMax = 15

// proxyPortGuards drops new connections that reach a proxy port directly
// rather than through a redirect (the listeners are bound to the wildcard
// address): without them, the ports would bypass loadBalancerSourceRanges
// and the Local-policy drops, and expose ClusterIP-only Services outside
// the node. REDIRECT sets the connection's DNAT status; --dst-type LOCAL
// keeps forwarded traffic that merely uses the same port number out.
func proxyPortGuards(specs []listenerSpec, ports map[listenerKey]int) []string {
	byProto := map[string][]int{}
	for i := range specs {
		if p, ok := ports[specs[i].Key]; ok {
			proto := strings.ToLower(string(specs[i].Protocol))
			byProto[proto] = append(byProto[proto], p)
		}
	}
	var out []string
	for _, proto := range []string{"tcp", "udp"} {
		ps := byProto[proto]
		slices.Sort(ps)
		for len(ps) > 0 {
			n := min(len(ps), multiportMax)
			list := make([]string, n)
			for i, p := range ps[:n] {
				list[i] = strconv.Itoa(p)
			}
			out = append(out, fmt.Sprintf("-A %s -m comment --comment \"proxy ports only through service addresses\" -p %s -m multiport --dports %s -m addrtype --dst-type LOCAL -m conntrack ! --ctstate DNAT -j DROP", chainFilter, proto, strings.Join(list, ",")))
			ps = ps[n:]
		}
	}
	return out
}
