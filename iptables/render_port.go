package iptables

import (
	"net/netip"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// portPlan is what one service port needs: the port's proxier.PortPolicy
// in iptables terms (chains, filter targets), as kube-proxy writes it.
type portPlan struct {
	chains                                       portChains
	port                                         string // the service port, spelled
	hasEndpoints                                 bool
	internalChain, externalPolicyChain           string
	hasInternal, hasExternal                     bool
	usesCluster, usesLocal, usesExternal         bool
	usesFirewall                                 bool
	noLocalInternal, noLocalExternal             bool
	allowedSources                               []netip.Prefix
	internalFilterTarget, externalFilterTarget   string
	internalFilterComment, externalFilterComment string
}

func planPort(p *proxier.Port, node *proxier.NodeInfo) portPlan {
	policy := p.Policy(node)
	plan := portPlan{chains: chainsFor(&p.ServicePort), port: itoa(p.Port), hasEndpoints: p.Usable.HasAny}
	chains := &plan.chains
	plan.usesCluster = len(p.Usable.Cluster) > 0 && p.UsesClusterEndpoints()
	plan.usesLocal = len(p.Usable.Local) > 0 && p.UsesLocalEndpoints()
	plan.internalChain, plan.externalPolicyChain = chains.clusterPolicy, chains.clusterPolicy
	if p.InternalPolicyLocal {
		plan.internalChain = chains.localPolicy
	}
	if p.ExternalPolicyLocal {
		plan.externalPolicyChain = chains.localPolicy
	}
	plan.hasInternal, plan.hasExternal = policy.InternalVerdict == proxier.Forward, policy.ExternalVerdict == proxier.Forward
	plan.noLocalInternal, plan.noLocalExternal = policy.NoLocalInternal, policy.NoLocalExternal
	plan.usesExternal = plan.hasEndpoints && p.ExternallyAccessible()
	// Fail closed: a Service that lists source ranges, none of them valid
	// for this family, gets a firewall chain that accepts nothing.
	plan.usesFirewall = plan.hasEndpoints && policy.Firewall
	plan.allowedSources = policy.AllowedSources
	plan.internalFilterTarget, plan.internalFilterComment = filterVerdict(policy.InternalVerdict, chains.name)
	plan.externalFilterTarget, plan.externalFilterComment = filterVerdict(policy.ExternalVerdict, chains.name)
	return plan
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
	plan := planPort(p, &snap.Node)
	if plan.noLocalInternal {
		s.noLocalInternal++
	}
	if plan.noLocalExternal {
		s.noLocalExternal++
	}
	r.writeClusterIP(p, &plan, s)
	r.writeExternalIPs(p, &plan, s)
	r.writeLoadBalancerIPs(p, &plan, s)
	r.writeNodePorts(p, &plan, s)
	r.writePortChains(snap, p, &plan, s)
}

// destination is "-d IP/32 -p proto -m comment --comment C -m proto
// --dport P": the match of traffic to ip on the service port.
func (plan *portPlan) destination(ip netip.Addr, comment string) []string {
	protocol := plan.chains.protocol
	return []string{"-d", xtables.HostMatch(ip), "-p", protocol, "-m", "comment", "--comment", comment, "-m", protocol, "--dport", plan.port}
}

// writeClusterIP sends ClusterIP traffic to the internal policy chain, or
// filters it when the port has no endpoints for it.
func (r *renderer) writeClusterIP(p *proxier.Port, plan *portPlan, s *svcRender) {
	if !p.ClusterIP.IsValid() {
		return
	}
	if plan.hasInternal {
		comment := saveQuote(plan.chains.name + " cluster IP")
		s.dispatch(p.ClusterIP, join(plan.destination(p.ClusterIP, comment), []string{"-j", plan.internalChain})...)
		return
	}
	s.share(tableFilter, chainServices, join(plan.destination(p.ClusterIP, plan.internalFilterComment), r.filterTarget(plan.internalFilterTarget))...)
}

// writeExternalIPs sends externalIPs traffic to the EXT chain and filters
// what the external policy does not forward.
func (r *renderer) writeExternalIPs(p *proxier.Port, plan *portPlan, s *svcRender) {
	for _, ip := range p.ExternalIPs {
		if plan.hasEndpoints {
			s.dispatch(ip, join(plan.destination(ip, saveQuote(plan.chains.name+" external IP")), []string{"-j", plan.chains.external})...)
		}
		if !plan.hasExternal {
			s.share(tableFilter, chainExternalServices, join(plan.destination(ip, plan.externalFilterComment), r.filterTarget(plan.externalFilterTarget))...)
		}
	}
}

// writeLoadBalancerIPs sends LoadBalancer ingress traffic to the firewall
// chain (or EXT without loadBalancerSourceRanges), drops what the firewall
// does not accept and filters what the external policy does not forward.
func (r *renderer) writeLoadBalancerIPs(p *proxier.Port, plan *portPlan, s *svcRender) {
	chains := &plan.chains
	target := chains.external
	if plan.usesFirewall {
		target = chains.firewall
	}
	for _, ip := range p.LoadBalancerIPs {
		if plan.hasEndpoints {
			s.dispatch(ip, join(plan.destination(ip, saveQuote(chains.name+" loadbalancer IP")), []string{"-j", target})...)
		}
		if plan.usesFirewall {
			s.share(tableFilter, chainProxyFirewall, join(plan.destination(ip, saveQuote(chains.name+" traffic not accepted by "+chains.firewall)), []string{"-j", "DROP"})...)
		}
	}
	if !plan.hasExternal {
		for _, ip := range p.LoadBalancerIPs {
			s.share(tableFilter, chainExternalServices, join(plan.destination(ip, plan.externalFilterComment), r.filterTarget(plan.externalFilterTarget))...)
		}
	}
}

// writeNodePorts sends NodePort traffic to the EXT chain, filters what the
// external policy does not forward and accepts the healthCheckNodePort.
func (r *renderer) writeNodePorts(p *proxier.Port, plan *portPlan, s *svcRender) {
	chains := &plan.chains
	if p.NodePort != 0 {
		nodePort := itoa(p.NodePort)
		if plan.hasEndpoints {
			s.share(tableNAT, chainNodePorts, "-p", chains.protocol, "-m", "comment", "--comment", saveQuote(chains.name), "-m", chains.protocol, "--dport", nodePort, "-j", chains.external)
		}
		if !plan.hasExternal {
			s.share(tableFilter, chainExternalServices, join([]string{"-p", chains.protocol, "-m", "comment", "--comment", plan.externalFilterComment,
				"-m", "addrtype", "--dst-type", "LOCAL", "-m", chains.protocol, "--dport", nodePort}, r.filterTarget(plan.externalFilterTarget))...)
		}
	}
	if p.HealthCheckNodePort != 0 {
		s.share(tableFilter, chainNodePorts, "-p", "tcp", "-m", "comment", "--comment", saveQuote(chains.name+" health check node port"),
			"-m", "tcp", "--dport", itoa(p.HealthCheckNodePort), "-j", "ACCEPT")
	}
}
