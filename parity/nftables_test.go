package parity

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestParityNFTables is the rule-level differential test against upstream
// kube-proxy v1.37.2 in nftables mode (runParity): table kube-proxy of
// each family is listed in both namespaces and compared object by object,
// the rules of a chain in order, the elements of a set or map as a set.
// Only the deviations in nftDeviations are tolerated.
func TestParityNFTables(t *testing.T) {
	runParity(t, nftablesMode)
}

// nftablesMode: NodePorts on the Node's primary addresses (the mode's
// default), the same in both namespaces; the second variant on every
// local address, kube-proxy's other layout. CIDRs would name the
// addresses found on the interfaces, which differ between the namespaces.
var nftablesMode = mode{
	name: "nftables",
	variants: []variant{
		{"defaults", nil},
		{"masquerade-all, NodeCIDR, NodePorts on all addresses", []string{
			"--masquerade-all", "--detect-local-mode=NodeCIDR", "--nodeport-addresses=0.0.0.0/0,::/0"}},
	},
	dump:       nftDump,
	parse:      parseNFT,
	layout:     nftLayout,
	deviations: nftDeviations,
}

// nftDump is `nft list table ip|ip6 kube-proxy` in ns; "" while the proxy
// has not created it yet.
func nftDump(ns string, family v1.IPFamily) (string, error) {
	nftFamily := "ip"
	if family == v1.IPv6Protocol {
		nftFamily = "ip6"
	}
	out, err := testrig.Exec(ns, "nft", "list", "table", nftFamily, testrig.NFTTable)
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return "", nil
	}
	return out, err
}
