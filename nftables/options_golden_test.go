package nftables

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// optionScenario has a Service of every kind the options change: a
// ClusterIP, a NodePort with an externalTrafficPolicy=Local, and a load
// balancer with source ranges.
func optionScenario() flowtest.Scenario {
	sc := flowtest.Scenario{Name: "options"}
	for _, s := range flowtest.Scenarios() {
		if s.Name == "traffic-policy-local" || s.Name == "loadbalancer" {
			sc.Services = append(sc.Services, s.Services...)
			sc.Slices = append(sc.Slices, s.Slices...)
		}
	}
	return sc
}

// TestGoldenOptions renders one scenario under each option that changes
// the shared rules: masquerading, local traffic detection, the mark bit,
// NodePort addresses.
func TestGoldenOptions(t *testing.T) {
	sc := optionScenario()
	snap := sc.Snapshot()
	for _, tc := range optionVariants() {
		t.Run(tc.name, func(t *testing.T) {
			opts := flowOptions()
			tc.set(&opts)
			compareGolden(t, "option-"+tc.name+".golden", fakeSync(t, opts, snap))
		})
	}
}

// optionVariant is one setting of the options that change shared rules.
type optionVariant struct {
	name string
	set  func(*Options)
}

func optionVariants() []optionVariant {
	return []optionVariant{
		{"masquerade-all", func(o *Options) { o.MasqueradeAll = true }},
		{"detect-local-none", func(o *Options) { o.LocalDetector = proxier.LocalDetector{} }},
		{"detect-local-bridge", func(o *Options) { o.LocalDetector = proxier.DetectLocalByBridge("cbr0") }},
		{"detect-local-interface-prefix", func(o *Options) { o.LocalDetector = proxier.DetectLocalByInterfacePrefix("veth") }},
		{"masquerade-bit-5", func(o *Options) { o.MasqueradeBit = 5 }},
		{"nodeport-addresses", func(o *Options) { o.NodePortAddresses = []string{"198.51.100.0/24", "primary", "fd00::/8"} }},
		// kube-proxy's default in nftables mode.
		{"nodeport-addresses-primary", func(o *Options) { o.NodePortAddresses = []string{"primary"} }},
	}
}

// TestGoldenSCTP: SCTP ports are written as TCP and UDP ones are, with
// "sctp" as their protocol, as in kube-proxy.
func TestGoldenSCTP(t *testing.T) {
	sc := sctpScenario()
	compareGolden(t, "sctp.golden", fakeSync(t, flowOptions(), sc.Snapshot()))
}

// sctpScenario is a NodePort Service with one SCTP port and endpoints
// on both nodes.
func sctpScenario() flowtest.Scenario {
	sctp := v1.ProtocolSCTP
	return flowtest.Scenario{
		Services: []*v1.Service{flowtest.NewService("sig", "10.96.9.10", []v1.ServicePort{flowtest.Port("sig", sctp, 3868, 30868)}, flowtest.NodePortType)},
		Slices: []*discovery.EndpointSlice{flowtest.NewSlice("sig-1", "sig", []discovery.EndpointPort{flowtest.SlicePort("sig", sctp, 3868)},
			flowtest.EP{IP: "10.244.1.10", Node: flowtest.ThisNode}, flowtest.EP{IP: "10.244.2.10", Node: flowtest.OtherNode})},
	}
}
