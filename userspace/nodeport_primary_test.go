package userspace

import (
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

// --nodeport-addresses=primary on a node without an address of this
// family renders exactly what no filter renders (every local address), as
// kube-proxy.
func TestNodePortPrimaryWithoutNodeAddress(t *testing.T) {
	snap := richSnapshot().snap
	snap.Node.IPs = nil
	all, err := Render(snap, Options{Family: proxier.IPv4})
	if err != nil {
		t.Fatal(err)
	}
	primary, err := Render(snap, Options{Family: proxier.IPv4, NodePortAddresses: []string{"primary"}})
	if err != nil {
		t.Fatal(err)
	}
	if primary != all {
		t.Errorf("primary without a node address:\n%s\n--- want (no filter) ---\n%s", primary, all)
	}
}
