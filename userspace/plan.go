package userspace

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// class is the kind of destination a listener serves.
type class uint8

const (
	// internal: the ClusterIP.
	internal class = iota
	// external: NodePorts, externalIPs and LoadBalancer IPs.
	external
)

func (c class) String() string {
	if c == internal {
		return "internal"
	}
	return "external"
}

// listenerKey names one listener: a service port and a traffic class.
type listenerKey struct {
	Name  proxier.ServicePortName
	Class class
}

func (k listenerKey) String() string {
	return k.Name.String() + "/" + string(k.Name.Protocol) + "/" + k.Class.String()
}

// listenerSpec is what one listener must serve; pure data built from a
// Snapshot.
type listenerSpec struct {
	Key      listenerKey
	Protocol v1.Protocol
	Port     int32 // the service port the destinations listen on
	// ClusterIP (internal class) or externalIPs (external class).
	Dests []netip.Addr
	// LoadBalancerIPs and the source ranges allowed to reach them.
	LBIPs        []netip.Addr
	SourceRanges []netip.Prefix // PortPolicy.AllowedSources
	RangesSet    bool           // PortPolicy.Firewall: no valid range means nobody
	NodePort     int32
	// Reject is true when the Service has no usable endpoint at all: its
	// destinations are rejected in the filter table instead of redirected.
	Reject bool
	// Drop says which traffic is dropped (not rejected) because a Local
	// policy leaves it no endpoint, so that load balancers retry elsewhere.
	Drop dropMode
	// Src is the snapshot's port; unchanged ports keep the same pointer.
	Src *proxier.Port
}

// dropMode is which of a listener's traffic is dropped.
type dropMode uint8

const (
	dropNone dropMode = iota
	// dropAll: the policy is Local and there is no local endpoint.
	dropAll
	// dropOutside: externalTrafficPolicy=Local without a local endpoint;
	// pods and the node itself still reach the Cluster endpoints.
	dropOutside
)

// plan builds the listener specs of a snapshot, sorted by key. Service
// ports this mode cannot serve (SCTP) are left out and reported.
func plan(snap *proxier.Snapshot) ([]listenerSpec, []error) {
	var specs []listenerSpec
	var errs []error
	for _, name := range snap.SortedNames() {
		svc := snap.Services[name]
		for i := range svc.Ports {
			port := &svc.Ports[i]
			if port.Protocol != v1.ProtocolTCP && port.Protocol != v1.ProtocolUDP {
				errs = append(errs, fmt.Errorf("service port %s: protocol %s is not supported in userspace mode", port.Name, port.Protocol))
				continue
			}
			policy := port.Policy(&snap.Node)
			base := listenerSpec{Protocol: port.Protocol, Port: port.Port, Reject: policy.InternalVerdict == proxier.Reject, Src: port}
			if port.ClusterIP.IsValid() {
				spec := base
				spec.Key = listenerKey{Name: port.Name, Class: internal}
				spec.Dests = []netip.Addr{port.ClusterIP}
				if policy.InternalVerdict == proxier.Drop {
					spec.Drop = dropAll
				}
				specs = append(specs, spec)
			}
			if port.ExternallyAccessible() {
				spec := base
				spec.Key = listenerKey{Name: port.Name, Class: external}
				spec.Dests = port.ExternalIPs
				spec.LBIPs = port.LoadBalancerIPs
				spec.SourceRanges, spec.RangesSet = policy.AllowedSources, policy.Firewall
				spec.NodePort = port.NodePort
				if policy.ExternalVerdict == proxier.Drop {
					// The balancer short-circuits pods and the node to
					// the Cluster endpoints by source, when there are any.
					spec.Drop = dropAll
					if len(policy.ShortCircuit) > 0 {
						spec.Drop = dropOutside
					}
				}
				specs = append(specs, spec)
			}
		}
	}
	slices.SortFunc(specs, func(a, b listenerSpec) int { return compareKeys(a.Key, b.Key) })
	return specs, errs
}

func compareKeys(a, b listenerKey) int {
	if c := proxier.CompareNames(a.Name.NamespacedName, b.Name.NamespacedName); c != 0 {
		return c
	}
	if a.Name.Port != b.Name.Port {
		if a.Name.Port < b.Name.Port {
			return -1
		}
		return 1
	}
	if a.Name.Protocol != b.Name.Protocol {
		if a.Name.Protocol < b.Name.Protocol {
			return -1
		}
		return 1
	}
	return int(a.Class) - int(b.Class)
}
