package harness

import (
	"fmt"
	"strings"

	"github.com/kproxy/kproxy/bench/measure"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

// Spec is one proxy under test.
type Spec struct {
	Name   string // row label, e.g. "kproxy-iptables"
	Kind   report.Kind
	Mode   string   // --proxy-mode
	Binary string   // path; empty if unavailable
	Extra  []string // flags after the common ones
	// Unavailable, if set, says why the proxy cannot run here; its rows are
	// reported with status "unavailable".
	Unavailable string
	// Node runs the proxy; nil means the harness's default (the rig's node
	// namespace). The ipvs mode needs a VM Node.
	Node Node
	// Rules summarises the proxy's kernel state on node and returns the dump
	// (iptables-save for the iptables family of modes), used for the rules
	// column, the rule check of every probe and the floor.
	Rules func(node Node) (measure.Ruleset, string, error)
}

// MetricsAddr and HealthzAddr are where every proxy serves, inside its node.
const (
	MetricsAddr = "127.0.0.1:10249"
	HealthzAddr = "127.0.0.1:10256"
)

// Args returns the proxy's command line. Every proxy gets the same flags
// (only the binary and --proxy-mode differ), so no proxy is measured with
// work another skips. The conntrack flags stop each proxy from writing the
// conntrack sysctls, which the bench must not change on the host: kube-proxy
// would otherwise set nf_conntrack_max and the TCP timeouts at start.
func (s Spec) Args(kubeconfig, nodeName string) []string {
	args := []string{
		s.Binary,
		"--kubeconfig=" + kubeconfig,
		"--proxy-mode=" + s.Mode,
		"--hostname-override=" + nodeName,
		"--cluster-cidr=" + testrig.ClusterCIDR,
		"--metrics-bind-address=" + MetricsAddr,
		"--healthz-bind-address=" + HealthzAddr,
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"-v=2",
	}
	return append(args, s.Extra...)
}

// IptablesRules is Spec.Rules for modes that program iptables.
func IptablesRules(node Node) (measure.Ruleset, string, error) {
	dump, err := node.Exec("iptables-save")
	if err != nil {
		return measure.Ruleset{}, "", fmt.Errorf("iptables-save: %w", err)
	}
	return measure.CountRules(dump), dump, nil
}

// NftTable is the table both upstream's and kproxy's nftables modes own
// (IPv4; the rig is single-stack).
var NftTable = []string{"ip", "kube-proxy"}

// NftRules is Spec.Rules for modes that program nftables: their table, as
// `nft list table` prints it (which `nft -f` loads back, see nftFloor).
func NftRules(node Node) (measure.Ruleset, string, error) {
	dump, err := node.Exec(append([]string{"nft", "list", "table"}, NftTable...)...)
	if err != nil {
		return measure.Ruleset{}, "", fmt.Errorf("nft list table %s: %w", strings.Join(NftTable, " "), err)
	}
	return measure.CountNftRules(dump), dump, nil
}

// KproxyModes are kproxy's modes, in report order.
var KproxyModes = []string{"iptables", "nftables", "ipvs", "userspace"}

// rulesFor is the Rules function of a mode.
func rulesFor(mode string) func(Node) (measure.Ruleset, string, error) {
	if mode == "nftables" {
		return NftRules
	}
	return IptablesRules
}

// DefaultSpecs returns upstream kube-proxy (iptables and nftables) and
// kproxy in every mode. kproxyBin or upstreamBin may be empty with a reason in the
// matching *Why: those rows are reported unavailable.
func DefaultSpecs(kproxyBin, kproxyWhy, upstreamBin, upstreamWhy string) []Spec {
	specs := []Spec{{
		Name: "upstream-iptables", Kind: report.KindUpstream, Mode: "iptables", Binary: upstreamBin,
		Unavailable: upstreamWhy, Rules: IptablesRules,
	}, {
		Name: "upstream-nftables", Kind: report.KindUpstream, Mode: "nftables", Binary: upstreamBin,
		Unavailable: upstreamWhy, Rules: NftRules,
	}}
	for _, mode := range KproxyModes {
		s := Spec{Name: "kproxy-" + mode, Kind: report.KindKproxy, Mode: mode, Binary: kproxyBin,
			Unavailable: kproxyWhy, Rules: rulesFor(mode)}
		if mode == "ipvs" && s.Unavailable == "" {
			// This host has no IPVS; the mode runs only in a VM, which needs
			// a VM Node (see Node).
			s.Unavailable = "needs IPVS, which this kernel lacks: runs only in a VM (no VM Node wired yet)"
		}
		specs = append(specs, s)
	}
	return specs
}

// Select keeps the specs named in names (all if names is empty).
func Select(specs []Spec, names []string) ([]Spec, error) {
	if len(names) == 0 {
		return specs, nil
	}
	var out []Spec
	for _, n := range names {
		found := false
		for _, s := range specs {
			if s.Name == n {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			var all []string
			for _, s := range specs {
				all = append(all, s.Name)
			}
			return nil, fmt.Errorf("unknown proxy %q (have %s)", n, strings.Join(all, ", "))
		}
	}
	return out, nil
}
