package proxier

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
)

// Node label and taint kube-proxy reads.
const (
	LabelZone            = "topology.kubernetes.io/zone"
	TaintToBeDeletedByCA = "ToBeDeletedByClusterAutoscaler"
)

// NodeInfoFromAPI strips the node's own Node object to one family.
func NodeInfoFromAPI(node *v1.Node, name string, family Family) NodeInfo {
	n := NodeInfo{Name: name}
	if node == nil {
		return n
	}
	n.Zone = node.Labels[LabelZone]
	for _, want := range []v1.NodeAddressType{v1.NodeInternalIP, v1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type != want {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && FamilyOf(ip.Unmap()) == family {
				n.IPs = append(n.IPs, ip.Unmap())
			}
		}
	}
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && FamilyOf(p.Addr()) == family {
			n.PodCIDRs = append(n.PodCIDRs, p.Masked())
		}
	}
	n.Terminating = node.DeletionTimestamp != nil
	for _, taint := range node.Spec.Taints {
		if taint.Key == TaintToBeDeletedByCA {
			n.Terminating = true
		}
	}
	return n
}
