package flowtest

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// badNodes are malformed versions of this node's own object. Bad fields
// are ignored (a Node is never reported: kproxy cannot skip it); Services
// keep working.
func badNodes(c *corpus) {
	for _, bad := range []struct {
		name   string
		mutate func(*v1.Node)
	}{
		{"node-ip-garbage", func(n *v1.Node) { n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "garbage"}} }},
		{"node-no-addresses", func(n *v1.Node) { n.Status.Addresses = nil }},
		{"node-only-ipv6", func(n *v1.Node) {
			n.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "fd00::11"}}
		}},
		{"node-podcidr-garbage", func(n *v1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.1.0/99", []string{"10.244.1.0/99"} }},
		{"node-nil-labels-and-taints", func(n *v1.Node) { n.Labels, n.Spec.Taints = nil, []v1.Taint{{Key: ""}} }},
	} {
		n := Node()
		bad.mutate(n)
		name := bad.name + "-svc"
		c.add(BadInput{Scenario: Scenario{Name: bad.name, Services: []*v1.Service{c.svc(name)}, Slices: []*discovery.EndpointSlice{c.slice(name)},
			Cases: []Case{reaches(name, "p")}}, Node: n, Programmed: []string{name}})
	}
}
