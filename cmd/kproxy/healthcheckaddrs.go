package main

import (
	"net"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// healthCheckAddresses returns the addresses the healthCheckNodePort
// servers of family f listen on: with --nodeport-addresses, the node's
// interface addresses it selects, as kube-proxy does since v1.26 (read once
// at start, as there); nil, meaning every address, without it. An empty
// result means none matched: no server can listen.
func healthCheckAddresses(c *Config, f proxier.Family, node *v1.Node, ifaceAddrs []netip.Addr) []netip.Addr {
	entries := proxier.NodePortAddressesFor(f, c.NodePortAddresses)
	if entries == nil {
		return nil
	}
	var primary netip.Addr
	if ips := proxier.NodeInfoFromAPI(node, "", f).IPs; len(ips) > 0 {
		primary = ips[0]
	}
	return proxier.SelectNodeAddresses(entries, primary, ifaceAddrs)
}

// interfaceAddrs returns the addresses of this network namespace's
// interfaces; on error (logged) none, and the servers listen everywhere,
// as kube-proxy's do then.
func interfaceAddrs() ([]netip.Addr, bool) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		klog.ErrorS(err, "Cannot list the node's addresses; health check node ports listen on all of them")
		return nil, false
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out, true
}
