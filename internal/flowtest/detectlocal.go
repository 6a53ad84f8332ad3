package flowtest

import (
	"net/netip"

	"github.com/kproxy/kproxy/proxier"
)

// DetectLocalMode is one of kube-proxy's --detect-local-mode values and
// the detector cmd/kproxy builds for it on ThisNode, for golden files that
// show every backend's rules in every mode.
type DetectLocalMode struct {
	Name     string // file-name friendly
	Detector proxier.LocalDetector
}

// DetectLocalModes returns the four modes: ClusterCIDR, NodeCIDR (this
// node's pod CIDR), BridgeInterface (cbr0) and InterfaceNamePrefix (veth,
// the node-side pod interfaces of testrig's topology).
func DetectLocalModes() []DetectLocalMode {
	return []DetectLocalMode{
		{"cluster-cidr", proxier.DetectLocalByCIDR(netip.MustParsePrefix(ClusterCIDR))},
		{"node-cidr", proxier.DetectLocalByCIDR(netip.MustParsePrefix("10.244.1.0/24"))},
		{"bridge-interface", proxier.DetectLocalByBridge("cbr0")},
		{"interface-name-prefix", proxier.DetectLocalByInterfacePrefix("veth")},
	}
}
