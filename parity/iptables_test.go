package parity

import (
	"regexp"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestParityIPTables is the rule-level differential test against upstream
// kube-proxy v1.37.2 in iptables mode (runParity): the nat and filter
// tables of both proxies are compared chain by chain. Only the deviations
// in deviations_test.go are tolerated.
func TestParityIPTables(t *testing.T) {
	runParity(t, iptablesMode)
}

// iptablesMode: NodePorts on every local address (the default):
// kube-proxy's other forms name the addresses it finds on the interfaces,
// which differ between the two namespaces.
var iptablesMode = mode{
	name:  "iptables",
	flags: []string{"--iptables-localhost-nodeports=false"},
	variants: []variant{
		{"defaults", nil},
		{"masquerade-all, localhost NodePorts, NodeCIDR", []string{
			"--masquerade-all", "--iptables-localhost-nodeports=true", "--detect-local-mode=NodeCIDR"}},
	},
	dump:       iptablesDump,
	parse:      parseSave,
	layout:     iptablesLayout,
	deviations: iptablesDeviations,
}

// iptablesDump is iptables-save (or ip6tables-save) of the nat and filter
// tables in ns, without the chain counters (the proxies' own API traffic
// moves them) and the comment lines (they carry the time).
func iptablesDump(ns string, family v1.IPFamily) (string, error) {
	save := "iptables-save"
	if family == v1.IPv6Protocol {
		save = "ip6tables-save"
	}
	var b strings.Builder
	for _, table := range comparedTables {
		out, err := testrig.Exec(ns, save, "-t", table)
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			b.WriteString(counters.ReplaceAllString(line, ""))
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

var counters = regexp.MustCompile(` \[\d+:\d+\]$`)
