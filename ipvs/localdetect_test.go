package ipvs

import (
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// TestRulesDetectLocal renders the mode's iptables rules with each
// detect-local mode: the ClusterIP masquerade rule matches what is not
// local, the ETP=Local-without-local-endpoints exception what is.
func TestRulesDetectLocal(t *testing.T) {
	for _, m := range flowtest.DetectLocalModes() {
		t.Run(m.Name, func(t *testing.T) {
			o, err := (&Options{LocalDetector: m.Detector}).withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			out := renderRules(&o, proxier.IPv4)
			local := strings.Join(xtables.IfLocal(m.Detector.ForFamily(proxier.IPv4)), " ")
			if !strings.Contains(out, "dst,dst ! "+local+" -j KUBE-MARK-MASQ") || !strings.Contains(out, "dst,dst "+local+" -j RETURN") {
				t.Errorf("no masquerade or RETURN rule with %q:\n%s", local, out)
			}
			golden(t, "rules-detect-local-"+m.Name+".golden", out)
		})
	}
	// No detector: no masquerade rule for ClusterIPs, no exception.
	o, _ := (&Options{}).withDefaults()
	if out := renderRules(&o, proxier.IPv4); strings.Contains(out, "from outside the cluster\" -m set") || strings.Contains(out, "-j RETURN\n-A KUBE-IPVS-FILTER -m comment --comment \"no local endpoints, from") {
		t.Errorf("rules without a detector:\n%s", out)
	}
}
