package proxier

import "net/netip"

// Verdict is what happens to new connections to one kind of destination
// of a service port on this node.
type Verdict uint8

const (
	// Forward: the connection goes to one of the kind's endpoints.
	Forward Verdict = iota
	// Reject: the Service has no usable endpoint anywhere; the client
	// gets an ICMP port unreachable at once.
	Reject
	// Drop: Local traffic policy and no endpoint on this node; the packet
	// is dropped, so that a load balancer's retry goes to another node.
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case Reject:
		return "reject"
	}
	return "drop"
}

// PortPolicy is what every mode does with one service port on this node,
// decided here once from the port and its usable endpoints; a mode only
// translates it into its datapath.
type PortPolicy struct {
	// Internal is where ClusterIP traffic goes when InternalVerdict is
	// Forward: the Cluster endpoints, or the Local ones with
	// internalTrafficPolicy=Local.
	Internal        []Endpoint
	InternalVerdict Verdict
	// External is where traffic from outside the cluster to a NodePort,
	// externalIP or load balancer IP goes when ExternalVerdict is Forward:
	// the Cluster endpoints, or the Local ones with
	// externalTrafficPolicy=Local.
	External        []Endpoint
	ExternalVerdict Verdict
	// ShortCircuit is where traffic from pods and from the node itself to
	// an external destination of an externalTrafficPolicy=Local port goes,
	// as if it had left through a load balancer and come back: the Cluster
	// endpoints. Nil when the policy is Cluster (External applies).
	ShortCircuit []Endpoint
	// NoLocalInternal and NoLocalExternal are true when the port counts in
	// kubeproxy_sync_proxy_rules_no_local_endpoints_total: a Local policy,
	// no local endpoint, but endpoints elsewhere (a port with no endpoint
	// at all is rejected, not counted), as kube-proxy counts.
	NoLocalInternal, NoLocalExternal bool
	// Firewall is true when loadBalancerSourceRanges restrict the port's
	// load balancer IPs: only AllowedSources may reach them (none when the
	// Service lists no valid range of this family: fail closed).
	Firewall bool
	// AllowedSources are the source ranges, then, when the node's primary
	// address is in one of them, each load balancer IP as a host prefix:
	// traffic from the node to an LB IP that is local loops back with that
	// IP as its source (as kube-proxy allows it in every mode).
	AllowedSources []netip.Prefix
	// DropFromOutside is set only under PolicyOptions.ExternalFallback:
	// External holds the Cluster endpoints for pods and the node, and
	// traffic from outside the cluster is dropped instead.
	DropFromOutside bool
}

// PolicyOptions are the deliberate departures a mode makes from the common
// policy, each named so that it is seen and tested.
type PolicyOptions struct {
	// ExternalFallback: an externalTrafficPolicy=Local port without a
	// local endpoint serves its external destinations from the Cluster
	// endpoints and drops only traffic from outside the cluster, as
	// kube-proxy's ipvs mode does (kubernetes#97081): a virtual server
	// cannot pick endpoints by source. (The iptables mode gets the same
	// result from its EXT chain's short-circuit rules.)
	ExternalFallback bool
}

// Policy decides the port's PortPolicy from its usable endpoints and the
// node (nil: no node address known).
func (p *Port) Policy(node *NodeInfo) PortPolicy { return p.PolicyWith(node, PolicyOptions{}) }

// PolicyWith is Policy with a mode's departures.
func (p *Port) PolicyWith(node *NodeInfo, o PolicyOptions) PortPolicy {
	u := &p.Usable
	pp := PortPolicy{Internal: u.Cluster, External: u.Cluster}
	if p.InternalPolicyLocal {
		pp.Internal = u.Local
	}
	if p.ExternalPolicyLocal {
		pp.External, pp.ShortCircuit = u.Local, u.Cluster
	}
	// As kube-proxy: only a Local policy can drop; a Cluster policy
	// forwards whenever the Service has endpoints (its Cluster set is
	// empty only when no traffic of that kind uses it).
	pp.InternalVerdict = verdict(u.HasAny, !p.InternalPolicyLocal || len(u.Local) > 0)
	pp.ExternalVerdict = verdict(u.HasAny, !p.ExternalPolicyLocal || len(u.Local) > 0)
	pp.NoLocalInternal = pp.InternalVerdict == Drop
	// As kube-proxy: counted even for a port with no external address
	// yet (a LoadBalancer without NodePorts or ingress).
	pp.NoLocalExternal = pp.ExternalVerdict == Drop
	if o.ExternalFallback && pp.ExternalVerdict == Drop && len(pp.ShortCircuit) > 0 {
		pp.External, pp.ExternalVerdict, pp.DropFromOutside = pp.ShortCircuit, Forward, true
	}
	pp.Firewall = len(p.LoadBalancerIPs) > 0 && p.HasSourceRanges
	if pp.Firewall {
		pp.AllowedSources = p.SourceRanges
		if node != nil && len(node.IPs) > 0 && containsAddr(p.SourceRanges, node.IPs[0]) {
			pp.AllowedSources = append([]netip.Prefix(nil), p.SourceRanges...)
			for _, ip := range p.LoadBalancerIPs {
				pp.AllowedSources = append(pp.AllowedSources, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	return pp
}

func containsAddr(ranges []netip.Prefix, a netip.Addr) bool {
	for _, r := range ranges {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

func verdict(hasAny, has bool) Verdict {
	switch {
	case !hasAny:
		return Reject
	case !has:
		return Drop
	}
	return Forward
}

// NoLocalEndpoints counts the snapshot's ports without local endpoints for
// their Local policy, by traffic kind ("internal", "external"), for
// SyncResult.NoLocalEndpoints: one count for every mode.
func NoLocalEndpoints(snap *Snapshot) map[string]int {
	m := map[string]int{"internal": 0, "external": 0}
	for _, svc := range snap.Services {
		for i := range svc.Ports {
			pp := svc.Ports[i].Policy(&snap.Node)
			if pp.NoLocalInternal {
				m["internal"]++
			}
			if pp.NoLocalExternal {
				m["external"]++
			}
		}
	}
	return m
}
