package nftables

import (
	"maps"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// kernelObjects are per-service objects in the table: service and
// endpoint chains, and affinity sets with their timeouts in seconds (0:
// unknown, listed from the kernel).
type kernelObjects struct {
	chains       map[string]bool
	affinitySets map[string]int32
	// noTable: the kernel was listed and there is no table: a full sync
	// has nothing to flush or delete.
	noTable bool
}

func newKernelObjects() kernelObjects {
	return kernelObjects{chains: map[string]bool{}, affinitySets: map[string]int32{}}
}

// serviceObjects is what one Service's rendering owns (its chains and
// affinity sets) and claims (elements of the shared sets and maps). A
// partial sync compares a changed Service's old and new ones.
type serviceObjects struct {
	kernelObjects
	// elements are the Service's claims, the first one per key.
	elements []*knftables.Element
	// claimed is the value of each key in elements, while rendering.
	claimed                          map[elemKey]string
	noLocalInternal, noLocalExternal int
}

func newServiceObjects() *serviceObjects {
	return &serviceObjects{kernelObjects: newKernelObjects(), claimed: map[elemKey]string{}}
}

// syncState is what the table holds since the last successful sync, as
// far as kproxy wrote it.
type syncState struct {
	services map[types.NamespacedName]*serviceObjects
	elements *elementTable
	// global is the Node and the ServiceCIDRs as the last full sync saw
	// them: the static part (NodePort destinations, the drop of unallocated
	// ClusterIPs) and the port policies depend on them, so a partial sync
	// with others becomes a full one.
	global string
	// noLocalInternal and noLocalExternal are the sums of the services'
	// counts, kept as they change: summing them cost 2 ms per sync at
	// 10,000 Services.
	noLocalInternal, noLocalExternal int
}

func newSyncState(services map[types.NamespacedName]*serviceObjects, elements *elementTable, global string) *syncState {
	s := &syncState{services: services, elements: elements, global: global}
	for _, service := range services {
		s.count(service, 1)
	}
	return s
}

// setService records name's objects; nil removes the Service.
func (s *syncState) setService(name types.NamespacedName, cur *serviceObjects) {
	s.count(s.services[name], -1)
	if cur == nil {
		delete(s.services, name)
		return
	}
	s.services[name] = cur
	s.count(cur, 1)
}

func (s *syncState) count(service *serviceObjects, sign int) {
	if service != nil {
		s.noLocalInternal += sign * service.noLocalInternal
		s.noLocalExternal += sign * service.noLocalExternal
	}
}

// owned is every per-service object of the Services (not the stale
// chains).
func (s *syncState) owned() kernelObjects {
	objects := newKernelObjects()
	for _, service := range s.services {
		for chain := range service.chains {
			objects.chains[chain] = true
		}
		maps.Copy(objects.affinitySets, service.affinitySets)
	}
	return objects
}

// noLocal counts the Local-policy ports without a local endpoint, as
// proxier.SyncResult wants them.
func (s *syncState) noLocal() map[string]int {
	return map[string]int{"internal": s.noLocalInternal, "external": s.noLocalExternal}
}

// uniqueKeys returns keys without repeats, in first-seen order.
func uniqueKeys(keys []elemKey) []elemKey {
	seen := make(map[elemKey]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
