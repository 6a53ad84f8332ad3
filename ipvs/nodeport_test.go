package ipvs

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

// NodePort addresses are the local ones --nodeport-addresses selects, as
// upstream's ipvs mode: "primary" (like a CIDR holding the Node object's
// first address) selects it only when it is on a local interface; without
// a kernel (Render) the Node object's addresses stand in for the local
// ones.
func TestNodePortAddressSelection(t *testing.T) {
	other, primary := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.11")
	node := &proxier.NodeInfo{IPs: []netip.Addr{primary}}
	both := []netip.Addr{other, primary}
	for _, tc := range []struct {
		filter []string
		local  []netip.Addr
		want   []netip.Addr
	}{
		{nil, both, both},
		{[]string{}, []netip.Addr{other}, []netip.Addr{other}},
		{[]string{"primary"}, both, []netip.Addr{primary}},
		{[]string{"primary"}, []netip.Addr{other}, nil},
		{[]string{"198.51.100.0/24"}, []netip.Addr{other}, nil},
		{[]string{"192.0.2.0/24", "primary"}, both, both},
		{[]string{"primary"}, nil, []netip.Addr{primary}}, // Render
	} {
		got := nodePortAddresses(&Options{NodePortAddresses: tc.filter}, node, tc.local)
		if !slices.Equal(got, tc.want) {
			t.Errorf("--nodeport-addresses=%q, local %v: %v, want %v", tc.filter, tc.local, got, tc.want)
		}
	}
}

// A node without an address of this family: "primary" selects nothing of
// it, so every local address answers, as in kube-proxy.
func TestNodePortPrimaryWithoutNodeAddress(t *testing.T) {
	local := []netip.Addr{netip.MustParseAddr("fd00::11"), netip.MustParseAddr("fd00:1::1")}
	got := nodePortAddresses(&Options{NodePortAddresses: []string{"primary"}}, &proxier.NodeInfo{}, local)
	if !slices.Equal(got, local) {
		t.Errorf("primary without a node address: %v, want every local address %v", got, local)
	}
}
