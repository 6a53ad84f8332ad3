package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/proxier"
)

// Local-traffic detection modes (--detect-local-mode), kube-proxy's.
const (
	DetectLocalClusterCIDR         = "ClusterCIDR"
	DetectLocalNodeCIDR            = "NodeCIDR"
	DetectLocalBridgeInterface     = "BridgeInterface"
	DetectLocalInterfaceNamePrefix = "InterfaceNamePrefix"
)

var detectLocalModes = []string{DetectLocalClusterCIDR, DetectLocalNodeCIDR, DetectLocalBridgeInterface, DetectLocalInterfaceNamePrefix}

// validateDetectLocal checks the mode and, for the interface modes, the
// interface name they need (kube-proxy requires it non-empty; kproxy also
// rejects what cannot be an interface name, which would fail every restore).
func validateDetectLocal(c *Config) []error {
	mode := string(c.DetectLocalMode)
	if !slices.Contains(detectLocalModes, mode) {
		return []error{fmt.Errorf("detectLocalMode (--detect-local-mode) %q: must be one of %s", mode, strings.Join(detectLocalModes, ", "))}
	}
	check := func(field, flag, name string, valid func(string) error) []error {
		if err := valid(name); err != nil {
			return []error{fmt.Errorf("detectLocal.%s (%s) with detectLocalMode %s: %v", field, flag, mode, err)}
		}
		return nil
	}
	switch mode {
	case DetectLocalBridgeInterface:
		return check("bridgeInterface", "--pod-bridge-interface", c.DetectLocal.BridgeInterface, proxier.ValidInterfaceName)
	case DetectLocalInterfaceNamePrefix:
		return check("interfaceNamePrefix", "--pod-interface-name-prefix", c.DetectLocal.InterfaceNamePrefix, proxier.ValidInterfacePrefix)
	}
	return nil
}

// localDetector builds the detector every backend takes its local-traffic
// matches from: --cluster-cidr, this node's podCIDRs (read once at start,
// as kube-proxy does), the pods' bridge or their interface name prefix.
func localDetector(c *Config, clusterCIDRs []netip.Prefix, node *v1.Node) (proxier.LocalDetector, error) {
	switch string(c.DetectLocalMode) {
	case DetectLocalNodeCIDR:
		cidrs, err := nodePodCIDRs(node)
		return proxier.DetectLocalByCIDR(cidrs...), err
	case DetectLocalBridgeInterface:
		return proxier.DetectLocalByBridge(c.DetectLocal.BridgeInterface), nil
	case DetectLocalInterfaceNamePrefix:
		return proxier.DetectLocalByInterfacePrefix(c.DetectLocal.InterfaceNamePrefix), nil
	}
	return proxier.DetectLocalByCIDR(clusterCIDRs...), nil
}

// nodePodCIDRs returns the Node's podCIDRs, for detectLocalMode NodeCIDR.
func nodePodCIDRs(node *v1.Node) ([]netip.Prefix, error) {
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
