package ipvs

import (
	"net/netip"

	"github.com/kproxy/kproxy/proxier"
)

// Build computes the desired State of one family from a snapshot. It is
// pure: the same snapshot and options always give the same State.
// NodePorts use the node's addresses from the Node object (Render has no
// kernel to ask); a running Proxier uses the local interface addresses.
func Build(snap *proxier.Snapshot, opts *Options) *State {
	return newDesired(snap, opts, nodePortAddresses(opts, &snap.Node, nil)).s
}

// buildService computes what one Service contributes to the desired
// State (without the rules and the empty sets every State has).
func buildService(svc *proxier.Service, fam proxier.Family, opts *Options, node *proxier.NodeInfo, nodePortAddrs []netip.Addr) *State {
	b := builder{s: NewState(), opts: opts, fam: fam, nodePortAddrs: nodePortAddrs}
	for i := range svc.Ports {
		b.port(&svc.Ports[i], node)
	}
	return b.s
}

type builder struct {
	s             *State
	opts          *Options
	fam           proxier.Family
	nodePortAddrs []netip.Addr
}

func (b *builder) add(d setDef, entry string) {
	n := d.name(b.fam)
	if b.s.Sets[n] == nil {
		b.s.Sets[n] = map[string]bool{}
	}
	b.s.Sets[n][entry] = true
}

func (b *builder) bind(a netip.Addr) {
	b.s.Addrs[a] = true
	b.add(setIPVSIPs, a.String())
}

// port adds everything one service port needs.
func (b *builder) port(p *proxier.Port, node *proxier.NodeInfo) {
	// externalTrafficPolicy=Local without a local endpoint: the Cluster
	// endpoints for pods and the node, a DROP from outside the cluster
	// (KUBE-EXTERNAL-NO-LOCAL), as upstream's ipvs mode does.
	pp := p.PolicyWith(node, proxier.PolicyOptions{ExternalFallback: true})
	proto := Protocol(p.Protocol)
	for _, e := range p.Usable.AllReachable {
		b.add(setLoopBack, entryIPPort(e.IP, proto, uint16(e.Port))+","+e.IP.String())
	}
	// vs adds a virtual server, or records why there is none: no endpoint
	// at all is a REJECT, no local endpoint for Local policy a DROP.
	vs := func(addr netip.Addr, port int32, eps []proxier.Endpoint, v proxier.Verdict) bool {
		key := entryIPPort(addr, proto, uint16(port))
		switch v {
		case proxier.Reject:
			b.add(setNoEndpoints, key)
			return false
		case proxier.Drop:
			b.add(setNoLocal, key)
			return false
		}
		vsrv := &VirtualServer{VSKey: VSKey{proto, addr, uint16(port)}, Scheduler: b.opts.Scheduler,
			Dests: map[netip.AddrPort]Dest{}}

		if p.AffinityTimeout > 0 {
			vsrv.Timeout = uint32(p.AffinityTimeout)
		}
		for _, e := range eps {
			vsrv.Dests[e.AddrPort()] = Dest{Weight: 1}
		}
		b.s.VirtualServers[vsrv.VSKey] = vsrv
		return true
	}
	// extVS is vs for an external address (externalIP, LoadBalancer IP,
	// node address).
	extVS := func(addr netip.Addr, port int32) bool {
		if !vs(addr, port, pp.External, pp.ExternalVerdict) {
			return false
		}
		if pp.DropFromOutside {
			b.add(setExtNoLocal, entryIPPort(addr, proto, uint16(port)))
		}
		return true
	}

	if p.ClusterIP.IsValid() {
		b.bind(p.ClusterIP)
		if vs(p.ClusterIP, p.Port, pp.Internal, pp.InternalVerdict) {
			b.add(setClusterIP, entryIPPort(p.ClusterIP, proto, uint16(p.Port)))
		}
	}
	for _, ip := range p.ExternalIPs {
		b.bind(ip)
		if extVS(ip, p.Port) {
			if p.ExternalPolicyLocal {
				b.add(setExternalLocal, entryIPPort(ip, proto, uint16(p.Port)))
			} else {
				b.add(setExternalIP, entryIPPort(ip, proto, uint16(p.Port)))
			}
		}
	}
	for _, ip := range p.LoadBalancerIPs {
		b.bind(ip)
		key := entryIPPort(ip, proto, uint16(p.Port))
		if !extVS(ip, p.Port) {
			continue
		}
		b.add(setLB, key)
		if p.ExternalPolicyLocal {
			b.add(setLBLocal, key)
		}
		if pp.Firewall {
			b.add(setLBFW, key)
			for _, r := range pp.AllowedSources {
				b.add(setLBSource, key+","+r.Masked().String())
			}
		}
	}
	if p.NodePort != 0 {
		for _, a := range b.nodePortAddrs {
			if extVS(a, p.NodePort) {
				if p.ExternalPolicyLocal {
					b.add(setNodePortLocal, entryIPPort(a, proto, uint16(p.NodePort)))
				} else {
					b.add(setNodePort, entryIPPort(a, proto, uint16(p.NodePort)))
				}
			}
		}
	}
	if p.HealthCheckNodePort != 0 {
		for _, a := range b.nodePortAddrs {
			b.add(setHealthCheck, entryIPPort(a, "TCP", uint16(p.HealthCheckNodePort)))
		}
	}
}

// nodePortAddresses resolves --nodeport-addresses against the node's
// local addresses (local: every interface but kube-ipvs0, lo and
// link-local, as upstream's ipvs mode), or against the Node object's
// addresses when local is nil (Render), with proxier.SelectNodeAddresses:
// no filter means all of them; "primary" is the Node object's first
// address if it is among them (upstream turns it into that address's /32
// or /128 and matches interface addresses the same way).
func nodePortAddresses(opts *Options, node *proxier.NodeInfo, local []netip.Addr) []netip.Addr {
	cands := local
	if cands == nil {
		cands = node.IPs
	}
	var primary netip.Addr
	if len(node.IPs) > 0 {
		primary = node.IPs[0]
	}
	entries := proxier.WithPrimary(opts.NodePortAddresses, primary)
	if len(entries) == 0 {
		entries = nil // SelectNodeAddresses: nil is every address
	}
	return proxier.SelectNodeAddresses(entries, primary, cands)
}
