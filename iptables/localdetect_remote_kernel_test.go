package iptables

import (
	"net/netip"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// TestKernelRemotePodSource runs flowtest.RemotePodScenario with real
// packets: a pod of node2 connects to a ClusterIP that node2 routes to
// node1, so it comes in on node1's uplink. Its endpoint on node1 sees the
// pod's own address under ClusterCIDR detection and node1's address
// (masqueraded) under InterfaceNamePrefix detection.
func TestKernelRemotePodSource(t *testing.T) {
	for _, d := range []struct {
		name        string
		detector    proxier.LocalDetector
		remoteLocal bool
	}{
		{"cluster-cidr", proxier.DetectLocalByCIDR(netip.MustParsePrefix(flowtest.ClusterCIDR)), true},
		{"interface-prefix", proxier.DetectLocalByInterfacePrefix(testrig.PodVethPrefix), false},
	} {
		t.Run(d.name, func(t *testing.T) {
			r := newKernelRigWith(t, Options{Family: proxier.IPv4, LocalDetector: d.detector})
			// node2 runs no proxy here: its pods' Service traffic goes to
			// node1 instead.
			testrig.Run(t, r.topo.Node(2).Netns, "ip", "route", "replace", "10.96.0.0/16", "via", flowtest.ThisNodeIP)
			sc := flowtest.RemotePodScenario(d.remoteLocal)
			r.sync(t, sc.Snapshot(), nil, true)
			for _, c := range sc.Cases {
				pk, err := sc.Packet(&c)
				if err != nil {
					t.Fatal(err)
				}
				r.probeCase(t, &c, pk, 2)
			}
		})
	}
}
