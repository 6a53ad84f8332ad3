package nftables

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// snapshotWithEndpoints is one ClusterIP Service with n endpoints.
func snapshotWithEndpoints(n int) *proxier.Snapshot {
	tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv4}, nil, time.Time{})
	tr.OnNode(flowtest.Node())
	eps := make([]flowtest.EP, n)
	for i := range eps {
		eps[i] = flowtest.EP{IP: fmt.Sprintf("10.244.2.%d", i+1), Node: flowtest.OtherNode}
	}
	tr.OnService(nil, flowtest.NewService("many", "10.96.0.50", []v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 0)}))
	tr.OnEndpointSlice(nil, flowtest.NewSlice("many-1", "many", []discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)}, eps...))
	return tr.Checkout().Snapshots[proxier.IPv4]
}

// TestEndpointChoiceForm: up to defaultInlineMapAbove endpoints get one
// numgen rule each; more get kube-proxy's single rule with an inline map,
// naming every endpoint once, in order.
func TestEndpointChoiceForm(t *testing.T) {
	for _, n := range []int{defaultInlineMapAbove, defaultInlineMapAbove + 1} {
		text, err := Render(snapshotWithEndpoints(n), flowOptions())
		if err != nil {
			t.Fatal(err)
		}
		rules := chainRules(text, func(chain string) bool {
			return strings.HasPrefix(chain, "service-") && strings.Contains(chain, "default/many/")
		})
		if n <= defaultInlineMapAbove {
			if len(rules) != n || strings.Contains(text, " map {") {
				t.Errorf("%d endpoints: %d rules, want one per endpoint:\n%s", n, len(rules), strings.Join(rules, "\n"))
			}
			continue
		}
		prefix := fmt.Sprintf("meta l4proto tcp dnat ip addr . port to numgen random mod %d map { ", n)
		if len(rules) != 1 || !strings.Contains(rules[0], prefix) || !strings.HasSuffix(rules[0], " }") {
			t.Fatalf("%d endpoints: rules %q, want one inline map rule", n, rules)
		}
		body := strings.TrimSuffix(rules[0][strings.Index(rules[0], prefix)+len(prefix):], " }")
		seen := map[string]bool{}
		for i, e := range strings.Split(body, ", ") {
			idx, target, _ := strings.Cut(e, " : ")
			if idx != fmt.Sprint(i) || seen[target] {
				t.Errorf("element %d is %q", i, e)
			}
			seen[target] = true
		}
		for i := 1; i <= n; i++ {
			if !seen[fmt.Sprintf("10.244.2.%d . 8080", i)] {
				t.Errorf("endpoint 10.244.2.%d missing from %q", i, body)
			}
		}
	}
}
