package ipvs

import (
	"net/netip"

	"github.com/kproxy/kproxy/proxier"
)

// Build computes the desired State of one family from a snapshot. It is
// pure: the same snapshot and options always give the same State.
func Build(snap *proxier.Snapshot, opts *Options) *State {
	s := NewState()
	b := builder{s: s, opts: opts, fam: snap.Family, nodePortAddrs: nodePortAddresses(opts, &snap.Node)}
	for _, name := range snap.SortedNames() {
		for i := range snap.Services[name].Ports {
			b.port(&snap.Services[name].Ports[i], &snap.Node)
		}
	}
	for _, d := range allSets {
		if n := d.name(snap.Family); s.Sets[n] == nil {
			s.Sets[n] = map[string]bool{} // the rules use every set
		}
	}
	s.Rules = renderRules(opts, snap.Family)
	return s
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
	proto := Protocol(p.Protocol)
	internal, external := p.Usable.Cluster, p.Usable.Cluster
	if p.InternalPolicyLocal {
		internal = p.Usable.Local
	}
	if p.ExternalPolicyLocal {
		external = p.Usable.Local
	}
	for _, e := range p.Usable.AllReachable {
		b.add(setLoopBack, entryIPPort(e.IP, proto, uint16(e.Port))+","+e.IP.String())
	}
	// vs adds a virtual server, or records why there is none: no endpoint
	// at all is a REJECT, no local endpoint for Local policy a DROP.
	vs := func(addr netip.Addr, port int32, eps []proxier.Endpoint, local bool) bool {
		key := entryIPPort(addr, proto, uint16(port))
		switch {
		case !p.Usable.HasAny:
			b.add(setNoEndpoints, key)
			return false
		case len(eps) == 0 && local:
			b.add(setNoLocal, key)
			return false
		}
		v := &VirtualServer{VSKey: VSKey{proto, addr, uint16(port)}, Scheduler: b.opts.Scheduler,
			Dests: map[netip.AddrPort]Dest{}}
		if p.AffinityTimeout > 0 {
			v.Timeout = uint32(p.AffinityTimeout)
		}
		for _, e := range eps {
			v.Dests[e.AddrPort()] = Dest{Weight: 1}
		}
		b.s.VirtualServers[v.VSKey] = v
		return true
	}

	if p.ClusterIP.IsValid() {
		b.bind(p.ClusterIP)
		if vs(p.ClusterIP, p.Port, internal, p.InternalPolicyLocal) {
			b.add(setClusterIP, entryIPPort(p.ClusterIP, proto, uint16(p.Port)))
		}
	}
	for _, ip := range p.ExternalIPs {
		b.bind(ip)
		if vs(ip, p.Port, external, p.ExternalPolicyLocal) {
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
		if !vs(ip, p.Port, external, p.ExternalPolicyLocal) {
			continue
		}
		b.add(setLB, key)
		if p.ExternalPolicyLocal {
			b.add(setLBLocal, key)
		}
		if p.HasSourceRanges {
			b.add(setLBFW, key)
			for _, r := range p.SourceRanges {
				b.add(setLBSource, key+","+r.Masked().String())
			}
			// Traffic from the node itself is allowed when the node's
			// primary address is in a range (as kube-proxy does).
			if len(node.IPs) > 0 && rangesContain(p.SourceRanges, node.IPs[0]) {
				for _, nip := range node.IPs {
					b.add(setLBSource, key+","+netip.PrefixFrom(nip, nip.BitLen()).String())
				}
			}
		}
	}
	if p.NodePort != 0 {
		for _, a := range b.nodePortAddrs {
			if vs(a, p.NodePort, external, p.ExternalPolicyLocal) {
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

func rangesContain(ranges []netip.Prefix, a netip.Addr) bool {
	for _, r := range ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// nodePortAddresses resolves --nodeport-addresses against the node's
// addresses (NodeInfo.IPs): no filter means all of them.
func nodePortAddresses(opts *Options, node *proxier.NodeInfo) []netip.Addr {
	if len(opts.NodePortAddresses) == 0 {
		return node.IPs
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range node.IPs {
		for _, s := range opts.NodePortAddresses {
			ok := false
			if s == "primary" {
				ok = a == node.IPs[0]
			} else if p, err := netip.ParsePrefix(s); err == nil {
				ok = p.Contains(a)
			}
			if ok && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}
