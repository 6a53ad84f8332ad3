package iptables

import (
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// writePortChains writes the port's own chains: EXT, FW, SVC, SVL, SEP.
func (r *renderer) writePortChains(snap *proxier.Snapshot, p *proxier.Port, plan *portPlan, s *svcRender) {
	chains := &plan.chains
	if plan.usesExternal {
		b := s.chain(chains.external)
		if !p.ExternalPolicyLocal {
			b.add(chains.external, "-m", "comment", "--comment", saveQuote("masquerade traffic for "+chains.name+" external destinations"), "-j", chainMarkMasq)
		} else {
			if local := xtables.IfLocal(r.opts.LocalDetector); local != nil {
				// Pod traffic to an external destination behaves as if it
				// went out to a load balancer and came back: Cluster policy.
				b.add(chains.external, withSaveOrder(local, []string{"-m", "comment", "--comment",
					saveQuote("pod traffic for " + chains.name + " external destinations"), "-j", chains.clusterPolicy})...)
			}
			// The node's own traffic gets a local source address: it
			// needs masquerade and may use any endpoint.
			b.add(chains.external, "-m", "comment", "--comment", saveQuote("masquerade LOCAL traffic for "+chains.name+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", chainMarkMasq)
			b.add(chains.external, "-m", "comment", "--comment", saveQuote("route LOCAL traffic for "+chains.name+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", chains.clusterPolicy)
		}
		if plan.hasExternal {
			b.add(chains.external, "-j", plan.externalPolicyChain)
		}
	}

	if plan.usesFirewall {
		b := s.chain(chains.firewall)
		comment := []string{"-m", "comment", "--comment", saveQuote(chains.name + " loadbalancer IP")}
		for _, src := range plan.allowedSources {
			b.add(chains.firewall, join([]string{"-s", src.String()}, comment, []string{"-j", chains.external})...)
		}
		b.add(chains.firewall, "-m", "comment", "--comment", saveQuote("other traffic to "+chains.name+" will be dropped by KUBE-PROXY-FIREWALL"))
	}

	if plan.usesCluster {
		b := s.chain(chains.clusterPolicy)
		r.writeMasq(b, p, plan, chains.clusterPolicy)
		r.writeBalancing(b, p, chains, chains.clusterPolicy, p.Usable.Cluster)
	}
	if plan.usesLocal {
		b := s.chain(chains.localPolicy)
		r.writeMasq(b, p, plan, chains.localPolicy)
		r.writeBalancing(b, p, chains, chains.localPolicy, p.Usable.Local)
	}
	for i := range p.Usable.AllReachable {
		ep := &p.Usable.AllReachable[i]
		sep := endpointChain(chains, ep)
		b := s.chain(sep)
		var comment []string
		if !r.large {
			comment = []string{"-m", "comment", "--comment", saveQuote(chains.name)}
		}
		b.add(sep, join([]string{"-s", xtables.HostMatch(ep.IP)}, comment, []string{"-j", chainMarkMasq})...)
		var affinity []string
		if p.AffinityTimeout > 0 {
			affinity = []string{"-m", "recent", "--set", "--name", sep, "--mask", r.fullMask, "--rsource"}
		}
		b.add(sep, join([]string{"-p", chains.protocol}, comment, affinity,
			[]string{"-m", chains.protocol, "-j", "DNAT", "--to-destination", ep.String()})...)
	}
}

// writeMasq starts the chain ClusterIP traffic enters with the rule that
// masquerades off-cluster (or all) traffic: off-cluster traffic to a
// ClusterIP may bounce to another node.
func (r *renderer) writeMasq(b *body, p *proxier.Port, plan *portPlan, chain string) {
	if !p.ClusterIP.IsValid() || !plan.hasInternal || chain != plan.internalChain {
		return
	}
	dst := []string{"-d", xtables.HostMatch(p.ClusterIP), "-p", plan.chains.protocol, "-m", "comment", "--comment", saveQuote(plan.chains.name + " cluster IP"),
		"-m", plan.chains.protocol, "--dport", itoa(p.Port), "-j", chainMarkMasq}
	switch {
	case r.opts.MasqueradeAll:
		b.add(chain, dst...)
	case r.opts.LocalDetector.IsImplemented():
		b.add(chain, withSaveOrder(xtables.IfNotLocal(r.opts.LocalDetector), dst)...)
	}
}

// writeBalancing writes a policy chain: affinity checks, then one rule
// per endpoint with probability 1/n, 1/(n-1), ... and a last catch-all.
// Above the large-cluster threshold the per-endpoint comments are left
// out, as kube-proxy does.
func (r *renderer) writeBalancing(b *body, p *proxier.Port, chains *portChains, chain string, eps []proxier.Endpoint) {
	comment := func(ep *proxier.Endpoint) []string {
		if r.large {
			return nil
		}
		return []string{"-m", "comment", "--comment", saveQuote(chains.name + " -> " + ep.String())}
	}
	if p.AffinityTimeout > 0 {
		secs := itoa(p.AffinityTimeout)
		for i := range eps {
			sep := endpointChain(chains, &eps[i])
			b.add(chain, join(comment(&eps[i]), []string{"-m", "recent", "--rcheck", "--seconds", secs, "--reap",
				"--name", sep, "--mask", r.fullMask, "--rsource", "-j", sep})...)
		}
	}
	n := len(eps)
	for i := range eps {
		sep := endpointChain(chains, &eps[i])
		if i < n-1 {
			b.add(chain, join(comment(&eps[i]), []string{"-m", "statistic", "--mode", "random", "--probability", r.probs.get(n - i), "-j", sep})...)
		} else {
			b.add(chain, join(comment(&eps[i]), []string{"-j", sep})...)
		}
	}
}
