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
	plan := portPlan{chains: chainsFor(&p.ServicePort), hasEndpoints: p.Usable.HasAny}
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
	chains := &plan.chains
	if plan.noLocalInternal {
		s.noLocalInternal++
	}
	if plan.noLocalExternal {
		s.noLocalExternal++
	}
	port := itoa(p.Port)
	// dst is "-d IP/32 -p proto -m comment --comment C -m proto --dport P".
	dst := func(ip netip.Addr, comment string) []string {
		return []string{"-d", xtables.HostMatch(ip), "-p", chains.protocol, "-m", "comment", "--comment", comment, "-m", chains.protocol, "--dport", port}
	}

	// ClusterIP.
	if p.ClusterIP.IsValid() {
		comment := saveQuote(chains.name + " cluster IP")
		if plan.hasInternal {
			s.dispatch(p.ClusterIP, join(dst(p.ClusterIP, comment), []string{"-j", plan.internalChain})...)
		} else {
			s.share(tableFilter, chainServices, join(dst(p.ClusterIP, plan.internalFilterComment), r.filterTarget(plan.internalFilterTarget))...)
		}
	}

	// externalIPs.
	for _, ip := range p.ExternalIPs {
		if plan.hasEndpoints {
			s.dispatch(ip, join(dst(ip, saveQuote(chains.name+" external IP")), []string{"-j", chains.external})...)
		}
		if !plan.hasExternal {
			s.share(tableFilter, chainExternalServices, join(dst(ip, plan.externalFilterComment), r.filterTarget(plan.externalFilterTarget))...)
		}
	}

	// LoadBalancer ingress IPs.
	lbChain := chains.external
	if plan.usesFirewall {
		lbChain = chains.firewall
	}
	for _, ip := range p.LoadBalancerIPs {
		if plan.hasEndpoints {
			s.dispatch(ip, join(dst(ip, saveQuote(chains.name+" loadbalancer IP")), []string{"-j", lbChain})...)
		}
		if plan.usesFirewall {
			s.share(tableFilter, chainProxyFirewall, join(dst(ip, saveQuote(chains.name+" traffic not accepted by "+chains.firewall)), []string{"-j", "DROP"})...)
		}
	}
	if !plan.hasExternal {
		for _, ip := range p.LoadBalancerIPs {
			s.share(tableFilter, chainExternalServices, join(dst(ip, plan.externalFilterComment), r.filterTarget(plan.externalFilterTarget))...)
		}
	}

	// NodePort.
	if p.NodePort != 0 {
		np := itoa(p.NodePort)
		if plan.hasEndpoints {
			s.share(tableNAT, chainNodePorts, "-p", chains.protocol, "-m", "comment", "--comment", saveQuote(chains.name), "-m", chains.protocol, "--dport", np, "-j", chains.external)
		}
		if !plan.hasExternal {
			s.share(tableFilter, chainExternalServices, join([]string{"-p", chains.protocol, "-m", "comment", "--comment", plan.externalFilterComment,
				"-m", "addrtype", "--dst-type", "LOCAL", "-m", chains.protocol, "--dport", np}, r.filterTarget(plan.externalFilterTarget))...)
		}
	}
	if p.HealthCheckNodePort != 0 {
		s.share(tableFilter, chainNodePorts, "-p", "tcp", "-m", "comment", "--comment", saveQuote(chains.name+" health check node port"),
			"-m", "tcp", "--dport", itoa(p.HealthCheckNodePort), "-j", "ACCEPT")
	}

	r.writePortChains(snap, p, &plan, s)
}
