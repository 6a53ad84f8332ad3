package ipvs

import (
	"net/netip"

	"github.com/kproxy/kproxy/proxier"
)

// Build computes the desired State of one family from a snapshot. It is
// pure: the same snapshot and options always give the same State.
// NodePorts use the node's addresses from the Node object (Render has no
// kernel to ask); a running Proxier uses the local interface addresses.
func Build(snap *proxier.Snapshot, opts *Options) *State {
	return newDesired(snap, opts, nodePortAddresses(opts, &snap.Node, nil)).s
}

// buildService computes what one Service contributes to the desired
// State (without the rules and the empty sets every State has).
func buildService(svc *proxier.Service, fam proxier.Family, opts *Options, node *proxier.NodeInfo, nodePortAddrs []netip.Addr) *State {
	b := builder{s: NewState(), opts: opts, fam: fam, nodePortAddrs: nodePortAddrs}
	for i := range svc.Ports {
		b.port(&svc.Ports[i], node)
	}
	return b.s
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
	pb := portBuilder{builder: b, port: p, proto: Protocol(p.Protocol),
		// externalTrafficPolicy=Local without a local endpoint: the
		// Cluster endpoints for pods and the node, a DROP from outside
		// the cluster (KUBE-EXTERNAL-NO-LOCAL), as upstream's ipvs mode
		// does.
		policy: p.PolicyWith(node, proxier.PolicyOptions{ExternalFallback: true})}
	pb.hairpinEntries()
	pb.clusterIP()
	pb.externalIPs()
	pb.loadBalancerIPs()
	pb.nodePorts()
	pb.healthCheckNodePorts()
}

// portBuilder adds one service port to a builder's State.
type portBuilder struct {
	*builder
	port   *proxier.Port
	proto  Protocol
	policy proxier.PortPolicy
}

// entry is the ipset entry of addr and port with the port's protocol.
func (pb *portBuilder) entry(addr netip.Addr, port int32) string {
	return entryIPPort(addr, pb.proto, uint16(port))
}

// hairpinEntries lists every reachable local endpoint in the loopback set,
// for the masquerade of pods that reach themselves through the Service
// (only a pod on this node can; kube-proxy lists the local ones too).
func (pb *portBuilder) hairpinEntries() {
	for _, e := range pb.port.Usable.AllReachable {
		if e.Local {
			pb.add(setLoopBack, pb.entry(e.IP, e.Port)+","+e.IP.String())
		}
	}
}

// virtualServer adds a virtual server on addr and port balancing over
// endpoints, or records why there is none: no endpoint at all is a
// REJECT, no local endpoint for a Local policy a DROP. It reports whether
// it added one.
func (pb *portBuilder) virtualServer(addr netip.Addr, port int32, endpoints []proxier.Endpoint, verdict proxier.Verdict) bool {
	switch verdict {
	case proxier.Reject:
		pb.add(setNoEndpoints, pb.entry(addr, port))
		return false
	case proxier.Drop:
		pb.add(setNoLocal, pb.entry(addr, port))
		return false
	}
	vs := &VirtualServer{VSKey: VSKey{pb.proto, addr, uint16(port)}, Scheduler: pb.opts.Scheduler,
		Dests: map[netip.AddrPort]Dest{}}
	if pb.port.AffinityTimeout > 0 {
		vs.Timeout = uint32(pb.port.AffinityTimeout)
	}
	for _, e := range endpoints {
		vs.Dests[e.AddrPort()] = Dest{Weight: 1}
	}
	pb.s.VirtualServers[vs.VSKey] = vs
	return true
}

// externalVirtualServer is virtualServer for an external address
// (externalIP, LoadBalancer IP, node address).
func (pb *portBuilder) externalVirtualServer(addr netip.Addr, port int32) bool {
	if !pb.virtualServer(addr, port, pb.policy.External, pb.policy.ExternalVerdict) {
		return false
	}
	if pb.policy.DropFromOutside {
		pb.add(setExtNoLocal, pb.entry(addr, port))
	}
	return true
}

func (pb *portBuilder) clusterIP() {
	p := pb.port
	if !p.ClusterIP.IsValid() {
		return
	}
	pb.bind(p.ClusterIP)
	if pb.virtualServer(p.ClusterIP, p.Port, pb.policy.Internal, pb.policy.InternalVerdict) {
		pb.add(setClusterIP, pb.entry(p.ClusterIP, p.Port))
	}
}

func (pb *portBuilder) externalIPs() {
	for _, ip := range pb.port.ExternalIPs {
		pb.bind(ip)
		pb.policyEntry(ip, pb.port.Port, setExternalLocal, setExternalIP)
	}
}

// policyEntry adds a virtual server on an external address and, when
// there is one, its entry in the set of the port's external policy.
func (pb *portBuilder) policyEntry(addr netip.Addr, port int32, local, cluster setDef) {
	if !pb.externalVirtualServer(addr, port) {
		return
	}
	if pb.port.ExternalPolicyLocal {
		pb.add(local, pb.entry(addr, port))
	} else {
		pb.add(cluster, pb.entry(addr, port))
	}
}

// loadBalancerIPs adds the LoadBalancer IPs, with their firewall when the
// Service has loadBalancerSourceRanges.
func (pb *portBuilder) loadBalancerIPs() {
	p := pb.port
	for _, ip := range p.LoadBalancerIPs {
		pb.bind(ip)
		if !pb.externalVirtualServer(ip, p.Port) {
			continue
		}
		entry := pb.entry(ip, p.Port)
		pb.add(setLB, entry)
		if p.ExternalPolicyLocal {
			pb.add(setLBLocal, entry)
		}
		if pb.policy.Firewall {
			pb.add(setLBFW, entry)
			for _, allowed := range pb.policy.AllowedSources {
				pb.add(setLBSource, entry+","+allowed.Masked().String())
			}
		}
	}
}

func (pb *portBuilder) nodePorts() {
	if pb.port.NodePort == 0 {
		return
	}
	for _, a := range pb.nodePortAddrs {
		pb.policyEntry(a, pb.port.NodePort, setNodePortLocal, setNodePort)
	}
}

func (pb *portBuilder) healthCheckNodePorts() {
	if pb.port.HealthCheckNodePort == 0 {
		return
	}
	for _, a := range pb.nodePortAddrs {
		pb.add(setHealthCheck, entryIPPort(a, "TCP", uint16(pb.port.HealthCheckNodePort)))
	}
}

// nodePortAddresses resolves --nodeport-addresses against the node's
// local addresses (local: every interface but kube-ipvs0, lo and
// link-local, as upstream's ipvs mode), or against the Node object's
// addresses when local is nil (Render), with proxier.SelectNodeAddresses:
// no filter means all of them; "primary" is the Node object's first
// address if it is among them (upstream turns it into that address's /32
// or /128 and matches interface addresses the same way).
func nodePortAddresses(opts *Options, node *proxier.NodeInfo, local []netip.Addr) []netip.Addr {
	cands := local
	if cands == nil {
		cands = node.IPs
	}
	primary := node.PrimaryIP()
	entries := proxier.WithPrimary(opts.NodePortAddresses, primary)
	if len(entries) == 0 {
		entries = nil // SelectNodeAddresses: nil is every address
	}
	return proxier.SelectNodeAddresses(entries, primary, cands)
}
