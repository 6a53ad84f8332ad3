package iptables

import (
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
)

// --nodeport-addresses=primary on a node without an address of this
// family renders exactly what no filter renders: NodePorts on every local
// address, as kube-proxy.
func TestNodePortPrimaryWithoutNodeAddress(t *testing.T) {
	for _, sc := range flowtest.Scenarios() {
		snap := sc.Snapshot()
		snap.Node.IPs = nil
		all, err := Render(snap, flowOptions())
		if err != nil {
			t.Fatal(err)
		}
		opts := flowOptions()
		opts.NodePortAddresses = []string{"primary"}
		primary, err := Render(snap, opts)
		if err != nil {
			t.Fatal(err)
		}
		if primary != all {
			t.Errorf("%s: primary without a node address renders differently from no filter:\n%s\n--- want ---\n%s", sc.Name, primary, all)
		}
	}
}
