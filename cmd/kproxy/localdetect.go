package main

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
)

// Local-traffic detection modes (--detect-local-mode) kproxy implements.
// kube-proxy also has BridgeInterface and InterfaceNamePrefix, which match
// on the incoming interface; kproxy rejects them at validation rather than
// accept them and silently detect nothing.
const (
	DetectLocalClusterCIDR = "ClusterCIDR"
	DetectLocalNodeCIDR    = "NodeCIDR"
)

var detectLocalModes = []string{DetectLocalClusterCIDR, DetectLocalNodeCIDR}

// localCIDRs returns the CIDRs whose sources count as local pod traffic:
// --cluster-cidr, or with NodeCIDR this node's podCIDRs (read once at
// start, as kube-proxy does).
func localCIDRs(c *Config, clusterCIDRs []netip.Prefix, node *v1.Node) ([]netip.Prefix, error) {
	if string(c.DetectLocalMode) != DetectLocalNodeCIDR {
		return clusterCIDRs, nil
	}
	if node == nil {
		return nil, fmt.Errorf("detectLocalMode NodeCIDR needs this node's Node object (its podCIDRs)")
	}
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("node podCIDR %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("detectLocalMode NodeCIDR: node %s has no podCIDR", node.Name)
	}
	return out, nil
}
