package proxier

import (
	"cmp"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"
)

// Snapshot is the desired state of one IP family at one moment: immutable,
// shared by value between the sync loop and a backend. Unchanged Services
// keep the same *Service from one snapshot to the next.
type Snapshot struct {
	Family Family
	Node   NodeInfo
	// ServiceCIDRs are the ranges of this family the cluster allocates
	// ClusterIPs from (its ServiceCIDR objects), sorted.
	ServiceCIDRs []netip.Prefix
	Services     map[types.NamespacedName]*Service
}

// Service is one Service's ports of one family with their endpoints.
type Service struct {
	Name  types.NamespacedName
	Ports []Port
}

// Port is a service port, every endpoint the slices list for it, and the
// ones this node may use.
type Port struct {
	ServicePort
	Endpoints []Endpoint
	Usable    UsableEndpoints
}

// SortedNames returns the Services' names in a fixed order, so that
// rendering is deterministic.
func (s *Snapshot) SortedNames() []types.NamespacedName {
	names := make([]types.NamespacedName, 0, len(s.Services))
	for n := range s.Services {
		names = append(names, n)
	}
	slices.SortFunc(names, CompareNames)
	return names
}

// CompareNames orders Services by namespace, then name.
func CompareNames(a, b types.NamespacedName) int {
	if c := cmp.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// NameSet is a set of Service names.
type NameSet map[types.NamespacedName]struct{}

// Has reports whether n is in the set.
func (s NameSet) Has(n types.NamespacedName) bool { _, ok := s[n]; return ok }

// Sorted returns the names in a fixed order.
func (s NameSet) Sorted() []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	slices.SortFunc(out, CompareNames)
	return out
}

// buildService assembles one Service of one family from its stripped
// ports and slices; nil when the Service has no port of that family.
func buildService(name types.NamespacedName, ports []ServicePort, slices map[string]*Slice, node *NodeInfo, family Family) *Service {
	if len(ports) == 0 {
		return nil
	}
	svc := &Service{Name: name, Ports: make([]Port, len(ports))}
	for i := range ports {
		p := &svc.Ports[i]
		p.ServicePort = ports[i]
		p.Endpoints = mergeEndpoints(slices, ports[i].Name, family, node.Name)
		p.Usable = CategorizeEndpoints(&p.ServicePort, p.Endpoints, node)
	}
	return svc
}
