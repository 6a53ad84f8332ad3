package iptables

import "github.com/kproxy/kproxy/proxier"

// portPlan is what one service port needs, decided from Port.Usable as
// kube-proxy decides it.
type portPlan struct {
	c                                       portChains
	hasEndpoints                            bool
	internalChain, externalPolicyChain      string
	hasInternal, hasExternal                bool
	usesCluster, usesLocal, usesExt         bool
	usesFW                                  bool
	internalFilterTarget, extFilterTarget   string
	internalFilterComment, extFilterComment string
}

func planPort(p *proxier.Port) portPlan {
	pl := portPlan{c: chainsFor(&p.ServicePort), hasEndpoints: p.Usable.HasAny}
	c := &pl.c
	pl.usesCluster = len(p.Usable.Cluster) > 0 && p.UsesClusterEndpoints()
	pl.usesLocal = len(p.Usable.Local) > 0 && p.UsesLocalEndpoints()
	pl.internalChain, pl.hasInternal = c.svc, pl.hasEndpoints
	if p.InternalPolicyLocal {
		pl.internalChain, pl.hasInternal = c.svl, len(p.Usable.Local) > 0
	}
	pl.externalPolicyChain, pl.hasExternal = c.svc, pl.hasEndpoints
	if p.ExternalPolicyLocal {
		pl.externalPolicyChain, pl.hasExternal = c.svl, len(p.Usable.Local) > 0
	}
	pl.usesExt = pl.hasEndpoints && p.ExternallyAccessible()
	// Fail closed: a Service that lists source ranges, none of them valid
	// for this family, gets a firewall chain that accepts nothing.
	pl.usesFW = pl.hasEndpoints && len(p.LoadBalancerIPs) > 0 && p.HasSourceRanges
	if !pl.hasEndpoints {
		pl.internalFilterTarget, pl.extFilterTarget = "REJECT", "REJECT"
		pl.internalFilterComment = quote(c.name + " has no endpoints")
		pl.extFilterComment = pl.internalFilterComment
	} else {
		if !pl.hasInternal {
			pl.internalFilterTarget, pl.internalFilterComment = "DROP", quote(c.name+" has no local endpoints")
		}
		if !pl.hasExternal {
			pl.extFilterTarget, pl.extFilterComment = "DROP", quote(c.name+" has no local endpoints")
		}
	}
	return pl
}

// writePort writes one service port: its dispatch rules in the shared
// chains, and its own chains into out (r.nat, or r.skipped when the
// Service is unchanged on a partial sync).
func (r *renderer) writePort(snap *proxier.Snapshot, p *proxier.Port, out *tableBuf) {
	pl := planPort(p)
	c := &pl.c
	if pl.hasEndpoints && !pl.hasInternal {
		r.noLocalInternal++
	}
	if pl.hasEndpoints && !pl.hasExternal {
		r.noLocalExternal++
	}
	proto := []string{"-m", c.protocol, "-p", c.protocol}
	port := itoa(p.Port)

	// ClusterIP.
	if p.ClusterIP.IsValid() {
		dst := join([]string{"-m", "comment", "--comment", quote(c.name + " cluster IP")}, proto, []string{"-d", p.ClusterIP.String(), "--dport", port})
		if pl.hasInternal {
			r.nat.line(join([]string{"-A", chainServices}, dst, []string{"-j", pl.internalChain})...)
			switch {
			case r.opts.MasqueradeAll:
				out.line(join([]string{"-A", pl.internalChain}, dst, []string{"-j", chainMarkMasq})...)
			case len(r.opts.ClusterCIDRs) > 0:
				// Off-cluster traffic to a ClusterIP may bounce to
				// another node: masquerade it.
				out.line(join([]string{"-A", pl.internalChain}, dst, []string{"!", "-s", r.opts.ClusterCIDRs[0].String(), "-j", chainMarkMasq})...)
			}
		} else {
			r.filter.line(join([]string{"-A", chainServices, "-m", "comment", "--comment", pl.internalFilterComment}, proto,
				[]string{"-d", p.ClusterIP.String(), "--dport", port, "-j", pl.internalFilterTarget})...)
		}
	}

	// externalIPs.
	for _, ip := range p.ExternalIPs {
		if pl.hasEndpoints {
			r.nat.line(join([]string{"-A", chainServices, "-m", "comment", "--comment", quote(c.name + " external IP")}, proto,
				[]string{"-d", ip.String(), "--dport", port, "-j", c.ext})...)
		}
		if !pl.hasExternal {
			r.filter.line(join([]string{"-A", chainExternalServices, "-m", "comment", "--comment", pl.extFilterComment}, proto,
				[]string{"-d", ip.String(), "--dport", port, "-j", pl.extFilterTarget})...)
		}
	}

	// LoadBalancer ingress IPs.
	lbChain := c.ext
	if pl.usesFW {
		lbChain = c.fw
	}
	for _, ip := range p.LoadBalancerIPs {
		if pl.hasEndpoints {
			r.nat.line(join([]string{"-A", chainServices, "-m", "comment", "--comment", quote(c.name + " loadbalancer IP")}, proto,
				[]string{"-d", ip.String(), "--dport", port, "-j", lbChain})...)
		}
		if pl.usesFW {
			r.filter.line(join([]string{"-A", chainProxyFirewall, "-m", "comment", "--comment", quote(c.name + " traffic not accepted by " + c.fw)}, proto,
				[]string{"-d", ip.String(), "--dport", port, "-j", "DROP"})...)
		}
	}
	if !pl.hasExternal {
		for _, ip := range p.LoadBalancerIPs {
			r.filter.line(join([]string{"-A", chainExternalServices, "-m", "comment", "--comment", pl.extFilterComment}, proto,
				[]string{"-d", ip.String(), "--dport", port, "-j", pl.extFilterTarget})...)
		}
	}

	// NodePort.
	if p.NodePort != 0 {
		if pl.hasEndpoints {
			r.nat.line(join([]string{"-A", chainNodePorts, "-m", "comment", "--comment", c.name}, proto,
				[]string{"--dport", itoa(p.NodePort), "-j", c.ext})...)
		}
		if !pl.hasExternal {
			r.filter.line(join([]string{"-A", chainExternalServices, "-m", "comment", "--comment", pl.extFilterComment,
				"-m", "addrtype", "--dst-type", "LOCAL"}, proto, []string{"--dport", itoa(p.NodePort), "-j", pl.extFilterTarget})...)
		}
	}
	if p.HealthCheckNodePort != 0 {
		r.filter.line("-A", chainNodePorts, "-m", "comment", "--comment", quote(c.name+" health check node port"),
			"-m", "tcp", "-p", "tcp", "--dport", itoa(p.HealthCheckNodePort), "-j", "ACCEPT")
	}

	r.writePortChains(snap, p, &pl, out)
}

// writePortChains writes the port's own chains: EXT, FW, SVC, SVL, SEP.
func (r *renderer) writePortChains(snap *proxier.Snapshot, p *proxier.Port, pl *portPlan, out *tableBuf) {
	c := &pl.c
	if pl.usesExt {
		out.chain(c.ext)
		if !p.ExternalPolicyLocal {
			out.line("-A", c.ext, "-m", "comment", "--comment", quote("masquerade traffic for "+c.name+" external destinations"), "-j", chainMarkMasq)
		} else {
			if len(r.opts.ClusterCIDRs) > 0 {
				// Pod traffic to an external destination behaves as if it
				// went out to a load balancer and came back: Cluster policy.
				out.line("-A", c.ext, "-m", "comment", "--comment", quote("pod traffic for "+c.name+" external destinations"),
					"-s", r.opts.ClusterCIDRs[0].String(), "-j", c.svc)
			}
			// The node's own traffic gets a local source address: it
			// needs masquerade and may use any endpoint.
			out.line("-A", c.ext, "-m", "comment", "--comment", quote("masquerade LOCAL traffic for "+c.name+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", chainMarkMasq)
			out.line("-A", c.ext, "-m", "comment", "--comment", quote("route LOCAL traffic for "+c.name+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", c.svc)
		}
		if pl.hasExternal {
			out.line("-A", c.ext, "-j", pl.externalPolicyChain)
		}
	}

	if pl.usesFW {
		out.chain(c.fw)
		head := []string{"-A", c.fw, "-m", "comment", "--comment", quote(c.name + " loadbalancer IP")}
		node := nodeIP(snap)
		allowFromNode := false
		for _, cidr := range p.SourceRanges {
			out.line(join(head, []string{"-s", cidr.String(), "-j", c.ext})...)
			if node.IsValid() && cidr.Contains(node) {
				allowFromNode = true
			}
		}
		if allowFromNode {
			// A node reaching an LB IP that is local may loop back with
			// the LB IP as source.
			for _, ip := range p.LoadBalancerIPs {
				out.line(join(head, []string{"-s", ip.String(), "-j", c.ext})...)
			}
		}
		out.line("-A", c.fw, "-m", "comment", "--comment", quote("other traffic to "+c.name+" will be dropped by KUBE-PROXY-FIREWALL"))
	}

	if pl.usesCluster {
		out.chain(c.svc)
		r.writeBalancing(out, p, c, c.svc, p.Usable.Cluster)
	}
	if pl.usesLocal {
		out.chain(c.svl)
		r.writeBalancing(out, p, c, c.svl, p.Usable.Local)
	}
	for i := range p.Usable.AllReachable {
		ep := &p.Usable.AllReachable[i]
		sep := endpointChain(c, ep)
		out.chain(sep)
		comment := []string{"-m", "comment", "--comment", c.name}
		out.line(join([]string{"-A", sep}, comment, []string{"-s", ep.IP.String(), "-j", chainMarkMasq})...)
		var affinity []string
		if p.AffinityTimeout > 0 {
			affinity = []string{"-m", "recent", "--name", sep, "--set"}
		}
		out.line(join([]string{"-A", sep}, comment, affinity,
			[]string{"-m", c.protocol, "-p", c.protocol, "-j", "DNAT", "--to-destination", ep.String()})...)
	}
}

// writeBalancing writes a policy chain: affinity checks, then one rule
// per endpoint with probability 1/n, 1/(n-1), ... and a last catch-all.
func (r *renderer) writeBalancing(out *tableBuf, p *proxier.Port, c *portChains, chain string, eps []proxier.Endpoint) {
	if p.AffinityTimeout > 0 {
		secs := itoa(p.AffinityTimeout)
		for i := range eps {
			sep := endpointChain(c, &eps[i])
			out.line("-A", chain, "-m", "comment", "--comment", quote(c.name+" -> "+eps[i].String()),
				"-m", "recent", "--name", sep, "--rcheck", "--seconds", secs, "--reap", "-j", sep)
		}
	}
	n := len(eps)
	for i := range eps {
		sep := endpointChain(c, &eps[i])
		comment := quote(c.name + " -> " + eps[i].String())
		if i < n-1 {
			out.line("-A", chain, "-m", "comment", "--comment", comment,
				"-m", "statistic", "--mode", "random", "--probability", r.probs.get(n-i), "-j", sep)
		} else {
			out.line("-A", chain, "-m", "comment", "--comment", comment, "-j", sep)
		}
	}
}
