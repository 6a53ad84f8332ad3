package proxier

import "slices"

// UsableEndpoints is the answer to "where may traffic to this service port
// go from this node", decided once here for every backend.
type UsableEndpoints struct {
	// Cluster are the endpoints for traffic that may go anywhere in the
	// cluster (nil if the port's policies never use them).
	Cluster []Endpoint
	// Local are the endpoints on this node for Local-policy traffic.
	Local []Endpoint
	// AllReachable is the union of Cluster and Local: every endpoint some
	// traffic may reach. Conntrack cleanup keeps flows to these.
	AllReachable []Endpoint
	// HasAny is true when the Service has a usable endpoint anywhere; when
	// false, traffic is rejected rather than dropped.
	HasAny bool
}

// Topology modes derived from EndpointSlice hints.
const (
	topologyNone           = ""
	topologyPreferSameNode = "PreferSameNode"
	topologyPreferSameZone = "PreferSameZone"
)

// CategorizeEndpoints picks the usable endpoints of one service port, as
// kube-proxy's CategorizeEndpoints does: ready endpoints, else serving and
// terminating ones, decided separately for Cluster and Local policy; topology
// hints narrow the Cluster set when every ready endpoint carries them.
func CategorizeEndpoints(port *ServicePort, endpoints []Endpoint, node *NodeInfo) UsableEndpoints {
	var u UsableEndpoints
	if port.UsesClusterEndpoints() {
		mode := topologyModeFromHints(endpoints, node)
		u.Cluster = filterEndpoints(endpoints, func(e *Endpoint) bool {
			return e.Ready && availableForTopology(e, mode, node)
		})
		if len(u.Cluster) == 0 {
			// No ready endpoint anywhere (topology already fell back if it had
			// to): use those still serving while they terminate.
			u.Cluster = filterEndpoints(endpoints, func(e *Endpoint) bool {
				return e.Serving && e.Terminating && availableForTopology(e, mode, node)
			})
		}
		u.HasAny = len(u.Cluster) > 0
	}
	if !port.UsesLocalEndpoints() {
		u.AllReachable = u.Cluster
		return u
	}
	localReady, localTerminating := false, false
	for i := range endpoints {
		e := &endpoints[i]
		if e.Ready || (e.Serving && e.Terminating) {
			u.HasAny = true
		}
		if e.Local && e.Ready {
			localReady = true
		} else if e.Local && e.Serving && e.Terminating {
			localTerminating = true
		}
	}
	switch {
	case localReady:
		u.Local = filterEndpoints(endpoints, func(e *Endpoint) bool { return e.Local && e.Ready })
	case localTerminating:
		u.Local = filterEndpoints(endpoints, func(e *Endpoint) bool { return e.Local && e.Serving && e.Terminating })
	}
	switch {
	case !port.UsesClusterEndpoints():
		u.AllReachable = u.Local
	case len(u.Local) == 0:
		u.AllReachable = u.Cluster
	default:
		// Local may hold terminating or topology-excluded endpoints that are
		// not in Cluster: merge the two, keeping the sorted order.
		u.AllReachable = filterEndpoints(endpoints, func(e *Endpoint) bool {
			return containsEndpoint(u.Cluster, e) || containsEndpoint(u.Local, e)
		})
	}
	return u
}

func topologyModeFromHints(endpoints []Endpoint, node *NodeInfo) string {
	allNodeHints, forNode := true, false
	allZoneHints, forZone := true, false
	any := false
	for i := range endpoints {
		e := &endpoints[i]
		if !e.Ready {
			continue
		}
		any = true
		if len(e.NodeHints) == 0 {
			allNodeHints = false
		} else if slices.Contains(e.NodeHints, node.Name) {
			forNode = true
		}
		if len(e.ZoneHints) == 0 {
			allZoneHints = false
		} else if node.Zone != "" && slices.Contains(e.ZoneHints, node.Zone) {
			forZone = true
		}
	}
	switch {
	case !any:
		return topologyNone
	case allNodeHints && forNode:
		return topologyPreferSameNode
	case allZoneHints && forZone:
		return topologyPreferSameZone
	}
	return topologyNone
}

func availableForTopology(e *Endpoint, mode string, node *NodeInfo) bool {
	switch mode {
	case topologyPreferSameNode:
		return slices.Contains(e.NodeHints, node.Name)
	case topologyPreferSameZone:
		return slices.Contains(e.ZoneHints, node.Zone)
	}
	return true
}

func filterEndpoints(eps []Endpoint, keep func(*Endpoint) bool) []Endpoint {
	n := 0
	for i := range eps {
		if keep(&eps[i]) {
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(eps):
		// The usual case (every endpoint ready, no hints): share the
		// snapshot's array instead of keeping a copy of every endpoint.
		return eps[:n:n]
	}
	out := make([]Endpoint, 0, n)
	for i := range eps {
		if keep(&eps[i]) {
			out = append(out, eps[i])
		}
	}
	return out
}

func containsEndpoint(eps []Endpoint, e *Endpoint) bool {
	for i := range eps {
		if eps[i].IP == e.IP && eps[i].Port == e.Port {
			return true
		}
	}
	return false
}
