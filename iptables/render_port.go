package iptables

import (
	"net/netip"

	"github.com/kproxy/kproxy/proxier"
)

// portPlan is what one service port needs: the port's proxier.PortPolicy
// in iptables terms (chains, filter targets), as kube-proxy writes it.
type portPlan struct {
	c                                       portChains
	hasEndpoints                            bool
	internalChain, externalPolicyChain      string
	hasInternal, hasExternal                bool
	usesCluster, usesLocal, usesExt         bool
	usesFW                                  bool
	noLocalInternal, noLocalExternal        bool
	allowedSources                          []netip.Prefix
	internalFilterTarget, extFilterTarget   string
	internalFilterComment, extFilterComment string
}

func planPort(p *proxier.Port, node *proxier.NodeInfo) portPlan {
	pp := p.Policy(node)
	pl := portPlan{c: chainsFor(&p.ServicePort), hasEndpoints: p.Usable.HasAny}
	c := &pl.c
	pl.usesCluster = len(p.Usable.Cluster) > 0 && p.UsesClusterEndpoints()
	pl.usesLocal = len(p.Usable.Local) > 0 && p.UsesLocalEndpoints()
	pl.internalChain, pl.externalPolicyChain = c.svc, c.svc
	if p.InternalPolicyLocal {
		pl.internalChain = c.svl
	}
	if p.ExternalPolicyLocal {
		pl.externalPolicyChain = c.svl
	}
	pl.hasInternal, pl.hasExternal = pp.InternalVerdict == proxier.Forward, pp.ExternalVerdict == proxier.Forward
	pl.noLocalInternal, pl.noLocalExternal = pp.NoLocalInternal, pp.NoLocalExternal
	pl.usesExt = pl.hasEndpoints && p.ExternallyAccessible()
	// Fail closed: a Service that lists source ranges, none of them valid
	// for this family, gets a firewall chain that accepts nothing.
	pl.usesFW = pl.hasEndpoints && pp.Firewall
	pl.allowedSources = pp.AllowedSources
	pl.internalFilterTarget, pl.internalFilterComment = filterVerdict(pp.InternalVerdict, c.name)
	pl.extFilterTarget, pl.extFilterComment = filterVerdict(pp.ExternalVerdict, c.name)
	return pl
}

// filterVerdict is the filter target and comment of a verdict ("" for
// Forward).
func filterVerdict(v proxier.Verdict, name string) (target, comment string) {
	switch v {
	case proxier.Reject:
		return "REJECT", saveQuote(name + " has no endpoints")
	case proxier.Drop:
		return "DROP", saveQuote(name + " has no local endpoints")
	}
	return "", ""
}

// filterTarget is a filter verdict as iptables-save prints it (REJECT
// carries its default --reject-with).
func (r *renderer) filterTarget(t string) []string {
	if t != "REJECT" {
		return []string{"-j", t}
	}
	if r.opts.Family == proxier.IPv6 {
		return []string{"-j", "REJECT", "--reject-with", "icmp6-port-unreachable"}
	}
	return []string{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"}
}

// writePort renders one service port into s: its entries in the shared
// chains and its own chains. Every rule is written in iptables-save's
// order: -s, -d, -p, then the matches, then the target.
func (r *renderer) writePort(snap *proxier.Snapshot, p *proxier.Port, s *svcRender) {
	pl := planPort(p, &snap.Node)
	c := &pl.c
	if pl.noLocalInternal {
		s.noLocalInternal++
	}
	if pl.noLocalExternal {
		s.noLocalExternal++
	}
	port := itoa(p.Port)
	// dst is "-d IP/32 -p proto -m comment --comment C -m proto --dport P".
	dst := func(ip netip.Addr, comment string) []string {
		return []string{"-d", host(ip), "-p", c.protocol, "-m", "comment", "--comment", comment, "-m", c.protocol, "--dport", port}
	}

	// ClusterIP.
	if p.ClusterIP.IsValid() {
		comment := saveQuote(c.name + " cluster IP")
		if pl.hasInternal {
			s.dispatch(p.ClusterIP, join(dst(p.ClusterIP, comment), []string{"-j", pl.internalChain})...)
		} else {
			s.share(tableFilter, chainServices, join(dst(p.ClusterIP, pl.internalFilterComment), r.filterTarget(pl.internalFilterTarget))...)
		}
	}

	// externalIPs.
	for _, ip := range p.ExternalIPs {
		if pl.hasEndpoints {
			s.dispatch(ip, join(dst(ip, saveQuote(c.name+" external IP")), []string{"-j", c.ext})...)
		}
		if !pl.hasExternal {
			s.share(tableFilter, chainExternalServices, join(dst(ip, pl.extFilterComment), r.filterTarget(pl.extFilterTarget))...)
		}
	}

	// LoadBalancer ingress IPs.
	lbChain := c.ext
	if pl.usesFW {
		lbChain = c.fw
	}
	for _, ip := range p.LoadBalancerIPs {
		if pl.hasEndpoints {
			s.dispatch(ip, join(dst(ip, saveQuote(c.name+" loadbalancer IP")), []string{"-j", lbChain})...)
		}
		if pl.usesFW {
			s.share(tableFilter, chainProxyFirewall, join(dst(ip, saveQuote(c.name+" traffic not accepted by "+c.fw)), []string{"-j", "DROP"})...)
		}
	}
	if !pl.hasExternal {
		for _, ip := range p.LoadBalancerIPs {
			s.share(tableFilter, chainExternalServices, join(dst(ip, pl.extFilterComment), r.filterTarget(pl.extFilterTarget))...)
		}
	}

	// NodePort.
	if p.NodePort != 0 {
		np := itoa(p.NodePort)
		if pl.hasEndpoints {
			s.share(tableNAT, chainNodePorts, "-p", c.protocol, "-m", "comment", "--comment", saveQuote(c.name), "-m", c.protocol, "--dport", np, "-j", c.ext)
		}
		if !pl.hasExternal {
			s.share(tableFilter, chainExternalServices, join([]string{"-p", c.protocol, "-m", "comment", "--comment", pl.extFilterComment,
				"-m", "addrtype", "--dst-type", "LOCAL", "-m", c.protocol, "--dport", np}, r.filterTarget(pl.extFilterTarget))...)
		}
	}
	if p.HealthCheckNodePort != 0 {
		s.share(tableFilter, chainNodePorts, "-p", "tcp", "-m", "comment", "--comment", saveQuote(c.name+" health check node port"),
			"-m", "tcp", "--dport", itoa(p.HealthCheckNodePort), "-j", "ACCEPT")
	}

	r.writePortChains(snap, p, &pl, s)
}
