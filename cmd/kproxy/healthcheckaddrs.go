package main

import (
	"net"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/ipvs"
	"github.com/kproxy/kproxy/proxier"
)

// ifaceAddr is one address of one of the node's interfaces.
type ifaceAddr struct {
	iface string
	addr  netip.Addr
}

// healthCheckAddresses returns the addresses the healthCheckNodePort
// servers of family f listen on: with --nodeport-addresses, the node's
// interface addresses it selects, as kube-proxy does since v1.26 (read once
// at start, as there), among those a server can and should bind (see
// bindable); nil, meaning every address, without it. An empty result means
// none matched: no server can listen.
func healthCheckAddresses(c *Config, f proxier.Family, node *v1.Node, ifaceAddrs []ifaceAddr) []netip.Addr {
	var primary netip.Addr
	if ips := proxier.NodeInfoFromAPI(node, "", f).IPs; len(ips) > 0 {
		primary = ips[0]
	}
	entries := proxier.WithPrimary(proxier.NodePortAddressesFor(f, c.NodePortAddresses), primary)
	if len(entries) == 0 {
		return nil
	}
	return proxier.SelectNodeAddresses(entries, primary, bindable(ifaceAddrs))
}

// bindable leaves out the addresses on kube-ipvs0, which are Service VIPs
// the ipvs mode owns (not the node's, and removed when the Service goes),
// and IPv6 link-local ones, which cannot be bound without a zone. IPv4
// link-local addresses bind like any other and stay, as in kube-proxy's
// ipvs mode.
func bindable(addrs []ifaceAddr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.iface == ipvs.Interface || a.addr.Is6() && a.addr.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, a.addr)
	}
	return out
}

// interfaceAddrs returns the addresses of this network namespace's
// interfaces; on error (logged) none, and the servers listen everywhere,
// as kube-proxy's do then.
func interfaceAddrs() ([]ifaceAddr, bool) {
	ifaces, err := net.Interfaces()
	if err != nil {
		klog.ErrorS(err, "Cannot list the node's interfaces; health check node ports listen on all addresses")
		return nil, false
	}
	var out []ifaceAddr
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			// Most likely a pod's veth deleted since the listing.
			klog.ErrorS(err, "Cannot list an interface's addresses; health check node ports leave them out", "interface", ifc.Name)
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out = append(out, ifaceAddr{ifc.Name, p.Addr().Unmap()})
			}
		}
	}
	return out, true
}
