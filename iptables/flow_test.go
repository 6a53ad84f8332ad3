package iptables

import (
	"net/netip"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// flowOptions are the options the flow table is written for.
func flowOptions() Options {
	return Options{Family: proxier.IPv4, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix(flowtest.ClusterCIDR)}}
}

// TestFlowTable runs the shared packet-flow table against Render's output.
func TestFlowTable(t *testing.T) {
	for _, sc := range flowtest.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			out, err := Render(sc.Snapshot(), flowOptions())
			if err != nil {
				t.Fatal(err)
			}
			tr := newTracer(t, out, flowtest.ThisNodeIP)
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
