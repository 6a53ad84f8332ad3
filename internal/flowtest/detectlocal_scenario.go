package flowtest

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// RemotePodScenario is a scenario whose outcome tells local-traffic
// detectors apart, which no case of Scenarios does: a pod of the other
// node whose connection to a ClusterIP is routed in on this node's uplink.
// Its address is in the cluster CIDR, so ClusterCIDR detection counts it
// as local (not masqueraded), but it did not come in on a pod interface,
// so BridgeInterface and InterfaceNamePrefix detection do not (as NodeCIDR
// detection does not: the address is outside this node's pod CIDR).
// remoteLocal says which the detector under test is. The only endpoint is
// a pod of this node, so that the replies come back through this node
// either way.
func RemotePodScenario(remoteLocal bool) Scenario {
	return Scenario{
		Name:     "remote-pod-source",
		Services: []*v1.Service{NewService("from-remote", "10.96.8.10", httpPort())},
		Slices:   []*discovery.EndpointSlice{NewSlice("from-remote-1", "from-remote", http8080(), EP{IP: local0, Node: ThisNode})},
		Cases: []Case{
			{Name: "remote pod to ClusterIP is masqueraded unless detected local by CIDR", Source: FromRemotePod, Service: "from-remote", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local0)}, Masquerade: !remoteLocal},
		},
	}
}
