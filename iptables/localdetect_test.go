package iptables

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// TestGoldenDetectLocal renders the traffic-policy-local scenario (pod
// traffic to an ETP=Local external address, off-cluster traffic to a
// ClusterIP) with each detect-local mode.
func TestGoldenDetectLocal(t *testing.T) {
	i := slices.IndexFunc(flowtest.Scenarios(), func(s flowtest.Scenario) bool { return s.Name == "traffic-policy-local" })
	snap := flowtest.Scenarios()[i].Snapshot()
	for _, m := range flowtest.DetectLocalModes() {
		t.Run(m.Name, func(t *testing.T) {
			out, err := Render(snap, Options{Family: proxier.IPv4, LocalDetector: m.Detector})
			if err != nil {
				t.Fatal(err)
			}
			local := strings.Join(xtables.IfLocal(m.Detector.ForFamily(proxier.IPv4)), " ")
			if !strings.Contains(out, " "+local+" -m comment --comment \"pod traffic for ") || !strings.Contains(out, "! "+local) {
				t.Errorf("no pod-traffic rule or masquerade rule with %q:\n%s", local, out)
			}
			compareGolden(t, "detect-local-"+m.Name+".golden", out)
		})
	}
}

// The match goes where iptables-save prints it, or every full sync would
// see the chain as changed.
func TestWithSaveOrder(t *testing.T) {
	rule := []string{"-d", "10.96.0.1/32", "-p", "tcp", "-j", "X"}
	for _, tc := range []struct {
		match []string
		want  string
	}{
		{nil, "-d 10.96.0.1/32 -p tcp -j X"},
		{[]string{"!", "-s", "10.244.0.0/16"}, "! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -j X"},
		{[]string{"!", "-i", "veth+"}, "-d 10.96.0.1/32 ! -i veth+ -p tcp -j X"},
		{[]string{"-i", "cbr0"}, "-d 10.96.0.1/32 -i cbr0 -p tcp -j X"},
	} {
		if got := strings.Join(withSaveOrder(tc.match, rule), " "); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.match, got, tc.want)
		}
	}
	if got := withSaveOrder([]string{"-i", "veth+"}, []string{"-m", "comment"}); !reflect.DeepEqual(got, []string{"-i", "veth+", "-m", "comment"}) {
		t.Errorf("before matches: %v", got)
	}
}
