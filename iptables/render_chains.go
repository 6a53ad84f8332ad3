package iptables

import (
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// writePortChains writes the port's own chains: EXT, FW, SVC, SVL, SEP.
func (r *renderer) writePortChains(snap *proxier.Snapshot, p *proxier.Port, pl *portPlan, s *svcRender) {
	c := &pl.c
	if pl.usesExt {
		b := s.chain(c.ext)
		if !p.ExternalPolicyLocal {
			b.add(c.ext, "-m", "comment", "--comment", saveQuote("masquerade traffic for "+c.name+" external destinations"), "-j", chainMarkMasq)
		} else {
			if local := xtables.IfLocal(r.opts.LocalDetector); local != nil {
				// Pod traffic to an external destination behaves as if it
				// went out to a load balancer and came back: Cluster policy.
				b.add(c.ext, withSaveOrder(local, []string{"-m", "comment", "--comment",
					saveQuote("pod traffic for " + c.name + " external destinations"), "-j", c.svc})...)
			}
			// The node's own traffic gets a local source address: it
			// needs masquerade and may use any endpoint.
			b.add(c.ext, "-m", "comment", "--comment", saveQuote("masquerade LOCAL traffic for "+c.name+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", chainMarkMasq)
			b.add(c.ext, "-m", "comment", "--comment", saveQuote("route LOCAL traffic for "+c.name+" external destinations"),
				"-m", "addrtype", "--src-type", "LOCAL", "-j", c.svc)
		}
		if pl.hasExternal {
			b.add(c.ext, "-j", pl.externalPolicyChain)
		}
	}

	if pl.usesFW {
		b := s.chain(c.fw)
		comment := []string{"-m", "comment", "--comment", saveQuote(c.name + " loadbalancer IP")}
		for _, src := range pl.allowedSources {
			b.add(c.fw, join([]string{"-s", src.String()}, comment, []string{"-j", c.ext})...)
		}
		b.add(c.fw, "-m", "comment", "--comment", saveQuote("other traffic to "+c.name+" will be dropped by KUBE-PROXY-FIREWALL"))
	}

	if pl.usesCluster {
		b := s.chain(c.svc)
		r.writeMasq(b, p, pl, c.svc)
		r.writeBalancing(b, p, c, c.svc, p.Usable.Cluster)
	}
	if pl.usesLocal {
		b := s.chain(c.svl)
		r.writeMasq(b, p, pl, c.svl)
		r.writeBalancing(b, p, c, c.svl, p.Usable.Local)
	}
	for i := range p.Usable.AllReachable {
		ep := &p.Usable.AllReachable[i]
		sep := endpointChain(c, ep)
		b := s.chain(sep)
		var comment []string
		if !r.large {
			comment = []string{"-m", "comment", "--comment", saveQuote(c.name)}
		}
		b.add(sep, join([]string{"-s", host(ep.IP)}, comment, []string{"-j", chainMarkMasq})...)
		var affinity []string
		if p.AffinityTimeout > 0 {
			affinity = []string{"-m", "recent", "--set", "--name", sep, "--mask", r.fullMask, "--rsource"}
		}
		b.add(sep, join([]string{"-p", c.protocol}, comment, affinity,
			[]string{"-m", c.protocol, "-j", "DNAT", "--to-destination", ep.String()})...)
	}
}

// writeMasq starts the chain ClusterIP traffic enters with the rule that
// masquerades off-cluster (or all) traffic: off-cluster traffic to a
// ClusterIP may bounce to another node.
func (r *renderer) writeMasq(b *body, p *proxier.Port, pl *portPlan, chain string) {
	if !p.ClusterIP.IsValid() || !pl.hasInternal || chain != pl.internalChain {
		return
	}
	dst := []string{"-d", host(p.ClusterIP), "-p", pl.c.protocol, "-m", "comment", "--comment", saveQuote(pl.c.name + " cluster IP"),
		"-m", pl.c.protocol, "--dport", itoa(p.Port), "-j", chainMarkMasq}
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
func (r *renderer) writeBalancing(b *body, p *proxier.Port, c *portChains, chain string, eps []proxier.Endpoint) {
	comment := func(ep *proxier.Endpoint) []string {
		if r.large {
			return nil
		}
		return []string{"-m", "comment", "--comment", saveQuote(c.name + " -> " + ep.String())}
	}
	if p.AffinityTimeout > 0 {
		secs := itoa(p.AffinityTimeout)
		for i := range eps {
			sep := endpointChain(c, &eps[i])
			b.add(chain, join(comment(&eps[i]), []string{"-m", "recent", "--rcheck", "--seconds", secs, "--reap",
				"--name", sep, "--mask", r.fullMask, "--rsource", "-j", sep})...)
		}
	}
	n := len(eps)
	for i := range eps {
		sep := endpointChain(c, &eps[i])
		if i < n-1 {
			b.add(chain, join(comment(&eps[i]), []string{"-m", "statistic", "--mode", "random", "--probability", r.probs.get(n - i), "-j", sep})...)
		} else {
			b.add(chain, join(comment(&eps[i]), []string{"-j", sep})...)
		}
	}
}
