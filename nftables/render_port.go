package nftables

import (
	"net/netip"
	"strconv"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// portPlan is one service port's proxier.PortPolicy in nftables terms:
// which chains it needs and where each kind of traffic goes.
type portPlan struct {
	chains                               portChains
	policy                               proxier.PortPolicy
	hasEndpoints                         bool
	usesCluster, usesLocal, usesExternal bool
	usesFirewall, affinity               bool
	internalChain, externalPolicy        string
	internalVerdict, externalVerdict     string // for no-endpoint-*: "goto reject-chain" or "drop"
}

func (r *renderer) planPort(p *proxier.Port) portPlan {
	plan := portPlan{chains: chainsFor(&p.ServicePort), policy: p.Policy(r.node), hasEndpoints: p.Usable.HasAny}
	plan.usesCluster = len(p.Usable.Cluster) > 0 && p.UsesClusterEndpoints()
	plan.usesLocal = len(p.Usable.Local) > 0 && p.UsesLocalEndpoints()
	// The external chain is needed even without external endpoints: it
	// short-circuits pod and node traffic to the Cluster endpoints.
	plan.usesExternal = plan.hasEndpoints && p.ExternallyAccessible()
	plan.usesFirewall = plan.policy.Firewall
	plan.affinity = p.AffinityTimeout > 0
	plan.internalChain, plan.externalPolicy = plan.chains.cluster, plan.chains.cluster
	if p.InternalPolicyLocal {
		plan.internalChain = plan.chains.local
	}
	if p.ExternalPolicyLocal {
		plan.externalPolicy = plan.chains.local
	}
	plan.internalVerdict = filterVerdict(plan.policy.InternalVerdict)
	plan.externalVerdict = filterVerdict(plan.policy.ExternalVerdict)
	return plan
}

// filterVerdict is what no-endpoint-services does with a verdict.
func filterVerdict(v proxier.Verdict) string {
	switch v {
	case proxier.Reject:
		return "goto " + chainReject
	case proxier.Drop:
		return "drop"
	}
	return ""
}

// writePort writes one service port: its chains, then its elements in
// the shared sets and maps.
func (r *renderer) writePort(p *proxier.Port) {
	plan := r.planPort(p)
	if plan.policy.NoLocalInternal {
		r.cur.noLocalInternal++
	}
	if plan.policy.NoLocalExternal {
		r.cur.noLocalExternal++
	}
	r.writePortChains(p, &plan)
	r.writeHairpins(p, &plan)
	port := strconv.Itoa(int(p.Port))
	if p.ClusterIP.IsValid() {
		r.element(&knftables.Element{Set: setClusterIPs, Key: []string{p.ClusterIP.String()}})
		if plan.policy.InternalVerdict == proxier.Forward {
			r.dispatch(&plan, mapServiceIPs, p.ClusterIP, port, "goto "+plan.internalChain)
		} else {
			r.noEndpoint(&plan, p.ClusterIP, port, plan.internalVerdict)
		}
	}
	for _, ip := range p.ExternalIPs {
		r.writeExternalDest(&plan, ip, port)
	}
	for _, ip := range p.LoadBalancerIPs {
		r.writeExternalDest(&plan, ip, port)
		if plan.usesFirewall {
			r.dispatch(&plan, mapFirewallIPs, ip, port, "goto "+plan.chains.firewall)
		}
	}
	if p.NodePort != 0 {
		nodePort := strconv.Itoa(int(p.NodePort))
		if plan.hasEndpoints {
			r.element(&knftables.Element{Map: mapServiceNodePorts, Key: []string{plan.chains.protocol, nodePort}, Value: []string{"goto " + plan.chains.external}})
		}
		if plan.policy.ExternalVerdict != proxier.Forward {
			r.element(&knftables.Element{Map: mapNoEndpointNodePorts, Key: []string{plan.chains.protocol, nodePort}, Value: []string{plan.externalVerdict},
				Comment: knftables.PtrTo(plan.chains.comment)})
		}
	}
}

// writeExternalDest writes an externalIP or load balancer IP: to the
// external chain while the Service has endpoints, and a reject or drop
// for what that chain does not forward.
func (r *renderer) writeExternalDest(plan *portPlan, ip netip.Addr, port string) {
	if plan.hasEndpoints {
		r.dispatch(plan, mapServiceIPs, ip, port, "goto "+plan.chains.external)
	}
	if plan.policy.ExternalVerdict != proxier.Forward {
		r.noEndpoint(plan, ip, port, plan.externalVerdict)
	}
}

// dispatch adds "ip . proto . port : verdict" to a verdict map.
func (r *renderer) dispatch(plan *portPlan, verdictMap string, ip netip.Addr, port, verdict string) {
	r.element(&knftables.Element{Map: verdictMap, Key: []string{ip.String(), plan.chains.protocol, port}, Value: []string{verdict}})
}

// noEndpoint adds a destination without usable endpoints to
// no-endpoint-services, commented with the port's name.
func (r *renderer) noEndpoint(plan *portPlan, ip netip.Addr, port, verdict string) {
	r.element(&knftables.Element{Map: mapNoEndpointServices, Key: []string{ip.String(), plan.chains.protocol, port}, Value: []string{verdict},
		Comment: knftables.PtrTo(plan.chains.comment)})
}
