package nftables

import (
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// writePortChains writes one service port's own chains: the policy
// chains (endpoint choice), the external chain, the firewall chain and,
// with affinity, the endpoint chains and their affinity sets.
func (r *renderer) writePortChains(p *proxier.Port, plan *portPlan) {
	if plan.usesCluster {
		r.ensureChain(plan.chains.cluster)
	}
	if plan.usesLocal {
		r.ensureChain(plan.chains.local)
	}
	if plan.usesExternal {
		r.ensureChain(plan.chains.external)
	}
	if plan.usesFirewall {
		r.ensureChain(plan.chains.firewall)
	}
	if plan.affinity {
		for _, ep := range p.Usable.AllReachable {
			chain, set := endpointNames(p.Name, plan.chains.protocol, ep)
			r.ensureChain(chain)
			r.ensureAffinitySet(set, p.AffinityTimeout)
		}
	}
	if plan.usesExternal {
		r.writeExternalChain(p, plan)
	}
	if plan.usesFirewall {
		r.writeFirewallChain(plan)
	}
	if plan.usesCluster {
		r.writeEndpointChoice(p, plan, plan.chains.cluster, p.Usable.Cluster)
	}
	if plan.usesLocal {
		r.writeEndpointChoice(p, plan, plan.chains.local, p.Usable.Local)
	}
	if plan.affinity {
		r.writeEndpointChains(p, plan)
	}
}

// writeExternalChain writes the chain every external destination (NodePort,
// externalIP, load balancer IP) goes to. With a Cluster policy it
// masquerades (the endpoint may be on another node). With a Local policy
// it keeps the client's address, except for pods and the node itself,
// which go to the Cluster endpoints as if through the load balancer.
func (r *renderer) writeExternalChain(p *proxier.Port, plan *portPlan) {
	add := func(comment string, words ...any) {
		rule := &knftables.Rule{Chain: plan.chains.external, Rule: knftables.Concat(words...)}
		if comment != "" {
			rule.Comment = knftables.PtrTo(comment)
		}
		r.tx.Add(rule)
	}
	if !p.ExternalPolicyLocal {
		add("masquerade", r.masqRule)
	} else if plan.usesCluster { // (no Cluster endpoints: nothing to short-circuit to)
		if r.ifLocal != "" {
			add("short-circuit pod traffic", r.ifLocal, "goto", plan.chains.cluster)
		}
		// The node's own traffic to an external address of its own has
		// that address as its source: masquerade it.
		add("masquerade local traffic", "fib saddr type local", r.masqRule)
		add("short-circuit local traffic", "fib saddr type local", "goto", plan.chains.cluster)
	}
	if plan.policy.ExternalVerdict == proxier.Forward {
		add("", "goto", plan.externalPolicy)
	}
}

// writeFirewallChain drops load balancer traffic from sources outside
// loadBalancerSourceRanges. Without a valid range of this family it drops
// everything: fail closed, as every kproxy mode (kube-proxy then writes
// no firewall).
func (r *renderer) writeFirewallChain(plan *portPlan) {
	if len(plan.policy.AllowedSources) == 0 {
		r.tx.Add(&knftables.Rule{Chain: plan.chains.firewall, Rule: "drop"})
		return
	}
	srcs := make([]string, len(plan.policy.AllowedSources))
	for i, s := range plan.policy.AllowedSources {
		srcs[i] = prefixString(s)
	}
	r.tx.Add(&knftables.Rule{Chain: plan.chains.firewall, Rule: knftables.Concat(
		r.ipX, "saddr != {", strings.Join(srcs, " , "), "} drop")})
}

// writeEndpointChoice writes a policy chain's endpoint choice: with
// affinity the affinity matches first, then one rule per endpoint, each
// taking its share of the connections still unclaimed ("numgen random mod
// K 0" for K = N, N-1, … 2; the last rule takes the rest), as iptables'
// statistic rules do. kube-proxy writes one "numgen random mod N" map
// instead: an anonymous set per service port, and the kernel allocates an
// anonymous set's name by scanning every set of the table and binds it by
// walking the whole transaction, so a full sync costs O(Services²) in the
// kernel (README, "Differences from kube-proxy"). Above inlineMapAbove
// endpoints kproxy writes kube-proxy's map too: there the rules' cost (and
// the packet's walk through them) outweighs the maps'.
func (r *renderer) writeEndpointChoice(p *proxier.Port, plan *portPlan, chain string, eps []proxier.Endpoint) {
	if !plan.affinity && len(eps) > r.opts.inlineMapAbove {
		r.writeInlineMapChoice(plan, chain, eps)
		return
	}
	if plan.affinity {
		for _, ep := range eps {
			epChain, set := endpointNames(p.Name, plan.chains.protocol, ep)
			r.tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat(r.ipX, "saddr", "@", set, "goto", epChain)})
		}
	}
	for i, ep := range eps {
		share := shareOf(len(eps) - i)
		rule := "meta l4proto " + plan.chains.protocol + " " + share + "dnat to " + ep.String()
		if plan.affinity {
			epChain, _ := endpointNames(p.Name, plan.chains.protocol, ep)
			rule = share + "goto " + epChain
		}
		r.tx.Add(&knftables.Rule{Chain: chain, Rule: rule})
	}
}

// writeInlineMapChoice writes kube-proxy's choice: one rule that DNATs
// to "numgen random mod N map { 0 : A . p, … }".
func (r *renderer) writeInlineMapChoice(plan *portPlan, chain string, eps []proxier.Endpoint) {
	elements := make([]string, len(eps))
	for i, ep := range eps {
		elements[i] = strconv.Itoa(i) + " : " + ep.IP.String() + " . " + strconv.Itoa(int(ep.Port))
	}
	r.tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat(
		"meta l4proto", plan.chains.protocol, "dnat", r.ipX, "addr . port to numgen random mod", len(eps),
		"map {", strings.Join(elements, ", "), "}")})
}

// shareOf matches one in left of the packets that reach it ("" for the
// last endpoint, which takes all).
func shareOf(left int) string {
	if left <= 1 {
		return ""
	}
	return "numgen random mod " + strconv.Itoa(left) + " 0 "
}

// ensureAffinitySet adds an endpoint's set of recent clients once; its
// elements time out after the affinity timeout. Adding an existing set
// keeps its elements: affinity survives syncs. A set known to have
// another timeout is deleted first: the Fake keeps the old timeout on
// add (Linux 6.18 updates it; older kernels may not).
func (r *renderer) ensureAffinitySet(set string, seconds int32) {
	if _, ok := r.cur.affinitySets[set]; ok {
		return
	}
	r.cur.affinitySets[set] = seconds
	if old := r.old.affinitySets[set]; old != 0 && old != seconds {
		r.tx.Delete(&knftables.Set{Name: set})
	}
	timeout := time.Duration(seconds) * time.Second
	// "dynamic": the kernel adds it anyway (RHEL 8), and a later add
	// without it would then fail as a change of flags.
	r.tx.Add(&knftables.Set{Name: set, Type: r.addrType,
		Flags: []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}, Timeout: &timeout})
}

// writeEndpointChains writes, for a ClientIP-affinity port, each
// reachable endpoint's chain: remember the client, DNAT.
func (r *renderer) writeEndpointChains(p *proxier.Port, plan *portPlan) {
	for _, ep := range p.Usable.AllReachable {
		chain, set := endpointNames(p.Name, plan.chains.protocol, ep)
		r.tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("update", "@", set, "{", r.ipX, "saddr }")})
		r.tx.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat("meta l4proto", plan.chains.protocol, "dnat to", ep.String())})
	}
}

// writeHairpins adds the port's local endpoints to hairpin-connections: a
// pod that reaches itself through the Service is masqueraded, else it
// would answer itself directly.
func (r *renderer) writeHairpins(p *proxier.Port, plan *portPlan) {
	for _, ep := range p.Usable.AllReachable {
		if ep.Local {
			ip := ep.IP.String()
			r.element(&knftables.Element{Set: setHairpinConnections, Key: []string{ip, ip, plan.chains.protocol, strconv.Itoa(int(ep.Port))}})
		}
	}
}
