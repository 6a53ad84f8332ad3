package proxier

import (
	"fmt"
	"net/netip"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServicePortName names one port of one Service, as kube-proxy does.
type ServicePortName struct {
	types.NamespacedName
	Port     string // the port's name; empty for a single unnamed port
	Protocol v1.Protocol
}

// String is "ns/name:port" (or "ns/name" for an unnamed port), the form
// kube-proxy hashes into chain names.
func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.NamespacedName.String()
	}
	return n.NamespacedName.String() + ":" + n.Port
}

// ServicePort is one port of a Service, stripped to what a proxy needs and
// restricted to one IP family. It is a value: never mutated once built.
type ServicePort struct {
	Name      ServicePortName
	ClusterIP netip.Addr // invalid (zero) when the Service has no ClusterIP of this family
	Port      int32
	Protocol  v1.Protocol
	NodePort  int32 // 0 when none

	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	// SourceRanges restricts LoadBalancer traffic. HasSourceRanges is true
	// whenever the Service lists any range, even if none is valid or of this
	// family, so that a bad range closes the firewall instead of opening it.
	SourceRanges    []netip.Prefix
	HasSourceRanges bool

	// AffinityTimeout is the ClientIP affinity in seconds; 0 means none.
	AffinityTimeout int32

	// ExternalPolicyLocal is externalTrafficPolicy=Local on a Service that is
	// reachable from outside (NodePort, LoadBalancer or externalIPs).
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
	HealthCheckNodePort int32
}

// ExternallyAccessible reports whether the port has any destination other
// than its ClusterIP.
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) > 0 || len(p.LoadBalancerIPs) > 0
}

// UsesClusterEndpoints reports whether some traffic to the port may go to
// any endpoint in the cluster. An externally reachable port always does,
// even with externalTrafficPolicy=Local: traffic from pods and the node to
// its external addresses is short-circuited to the Cluster endpoints.
func (p *ServicePort) UsesClusterEndpoints() bool {
	return !p.InternalPolicyLocal || p.ExternallyAccessible()
}

// UsesLocalEndpoints reports whether some traffic to the port may only go
// to endpoints on this node.
func (p *ServicePort) UsesLocalEndpoints() bool {
	return p.InternalPolicyLocal || (p.ExternallyAccessible() && p.ExternalPolicyLocal)
}

// Endpoint is one backend address of a service port, from an EndpointSlice.
type Endpoint struct {
	IP          netip.Addr
	Port        int32
	Ready       bool
	Serving     bool
	Terminating bool
	NodeName    string
	Zone        string
	ZoneHints   []string
	NodeHints   []string
	// Local is true when the endpoint runs on this node.
	Local bool
}

// AddrPort is the endpoint's address and port.
func (e Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.IP, uint16(e.Port)) }

// String is "ip:port" ("[ip]:port" for IPv6).
func (e Endpoint) String() string { return e.AddrPort().String() }

// NodeInfo is what the proxy needs of its own Node object.
type NodeInfo struct {
	Name string
	Zone string // topology.kubernetes.io/zone
	// IPs are the node's InternalIP and ExternalIP addresses of this family,
	// InternalIP first (the first one is the node's primary IP).
	IPs []netip.Addr
	// PodCIDRs of this family, used by --detect-local-mode=NodeCIDR.
	PodCIDRs []netip.Prefix
	// Terminating is true while the Node is being deleted or carries the
	// cluster autoscaler's ToBeDeleted taint; /healthz then fails.
	Terminating bool
}

// PrimaryIP is the node's primary IP of this family (its first InternalIP),
// or the zero Addr when unknown.
func (n *NodeInfo) PrimaryIP() netip.Addr {
	if len(n.IPs) > 0 {
		return n.IPs[0]
	}
	return netip.Addr{}
}

// Family is an IP family, IPv4 or IPv6.
type Family = v1.IPFamily

const (
	IPv4 Family = v1.IPv4Protocol
	IPv6 Family = v1.IPv6Protocol
)

// FamilyOf returns the family of an address.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// HostPort formats ip:port with brackets for IPv6.
func HostPort(ip netip.Addr, port int32) string {
	if ip.Is6() {
		return "[" + ip.String() + "]:" + strconv.Itoa(int(port))
	}
	return ip.String() + ":" + strconv.Itoa(int(port))
}

// Protocols kproxy proxies.
var knownProtocols = map[v1.Protocol]bool{v1.ProtocolTCP: true, v1.ProtocolUDP: true, v1.ProtocolSCTP: true}

// ValidProtocol reports whether p is TCP, UDP or SCTP.
func ValidProtocol(p v1.Protocol) bool { return knownProtocols[p] }

// errf is fmt.Errorf, kept short for the many validation messages.
func errf(format string, a ...any) error { return fmt.Errorf(format, a...) }
