package iptables

import (
	"github.com/kproxy/kproxy/internal/xtables"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// flowOptions are the options the flow table is written for.
func flowOptions() Options {
	return Options{Family: proxier.IPv4, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR))}
}

// bucketedOptions force the two-level dispatch layout.
func bucketedOptions() Options {
	o := flowOptions()
	o.bucketMin = 1
	return o
}

// TestFlowTable runs the shared packet-flow table against Render's output,
// in the flat and in the bucketed layout, and with local traffic detected
// by interface (the table's local pods come in on podIface) instead of by
// the cluster CIDR: the outcomes are the same, except for the other node's
// pods (flowtest.RemotePodScenario), which only the cluster CIDR counts as
// local.
func TestFlowTable(t *testing.T) {
	byPrefix, byBridge := flowOptions(), flowOptions()
	byPrefix.LocalDetector = proxier.DetectLocalByInterfacePrefix("veth")
	byBridge.LocalDetector = proxier.DetectLocalByBridge("cbr0")
	for _, layout := range []struct {
		name        string
		opts        Options
		podIface    string
		remoteLocal bool
	}{{"flat", flowOptions(), "veth0", true}, {"bucketed", bucketedOptions(), "veth0", true},
		{"interface-prefix", byPrefix, "veth3", false}, {"bridge", byBridge, "cbr0", false}} {
		t.Run(layout.name, func(t *testing.T) { testFlowTable(t, layout.opts, layout.podIface, layout.remoteLocal) })
	}
}

func testFlowTable(t *testing.T, opts Options, podIface string, remoteLocal bool) {
	for _, sc := range append(flowtest.Scenarios(), flowtest.RemotePodScenario(remoteLocal)) {
		t.Run(sc.Name, func(t *testing.T) {
			out, err := Render(sc.Snapshot(), opts)
			if err != nil {
				t.Fatal(err)
			}
			tr := newTracer(t, out, flowtest.ThisNodeIP)
			tr.podIface = podIface
			for _, c := range sc.Cases {
				pk, err := sc.Packet(&c)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.CheckAll(tr.trace(pk)); err != nil {
					t.Errorf("%s (%s): %v", c.Name, pk, err)
				}
			}
		})
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestRenderIPv6 renders an IPv6 snapshot: brackets in DNAT, ::1 excluded
// from NodePorts, and no IPv4 address anywhere.
func TestRenderIPv6(t *testing.T) {
	svc := flowtest.NewService("v6", "fd00:96::10", []v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 30600)}, flowtest.NodePortType)
	svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
	sl := flowtest.NewSlice("v6-1", "v6", []discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)}, flowtest.EP{IP: "fd00:244:2::10", Node: flowtest.OtherNode})
	sl.AddressType = discovery.AddressTypeIPv6
	tr := proxier.NewTracker(flowtest.ThisNode, []proxier.Family{proxier.IPv6}, nil, time.Time{})
	tr.OnService(nil, svc)
	tr.OnEndpointSlice(nil, sl)
	out, err := Render(tr.Checkout().Snapshots[proxier.IPv6], Options{Family: proxier.IPv6, LocalDetector: proxier.DetectLocalByCIDR(netip.MustParsePrefix("fd00:244::/48"), netip.MustParsePrefix("10.244.0.0/16"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--to-destination [fd00:244:2::10]:8080", "! -d ::1/128", "! -s fd00:244::/48", "-d fd00:96::10"} {
		if !strings.Contains(out, want) {
			t.Errorf("IPv6 render lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "10.244.") {
		t.Errorf("IPv6 render mentions an IPv4 CIDR:\n%s", out)
	}
	if _, err := xtables.ParseRestore(out); err != nil {
		t.Error(err)
	}
}
