package main

import (
	"io"
	"net/netip"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/proxier"
)

func TestHealthCheckAddresses(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"},
		Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "198.51.100.11"}}}}
	iface := []ifaceAddr{{"lo", netip.MustParseAddr("127.0.0.1")}, {"eth0", netip.MustParseAddr("198.51.100.11")},
		{"eth1", netip.MustParseAddr("10.0.0.5")}, {"eth1", netip.MustParseAddr("fd00::5")},
		// Never selected: Service VIPs on ipvs mode's interface, and an
		// IPv6 link-local address (not bindable without a zone).
		{"kube-ipvs0", netip.MustParseAddr("10.96.0.10")}, {"kube-ipvs0", netip.MustParseAddr("fd00::96:10")},
		{"eth1", netip.MustParseAddr("fe80::1")},
		// IPv4 link-local binds like any other address.
		{"eth1", netip.MustParseAddr("169.254.20.10")}}
	addrs := func(s ...string) []netip.Addr {
		out := []netip.Addr{}
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	for _, tc := range []struct {
		flag   string
		family proxier.Family
		want   []netip.Addr
	}{
		{"", proxier.IPv4, nil}, // every address
		{"--nodeport-addresses=10.0.0.0/8", proxier.IPv4, addrs("10.0.0.5")},
		{"--nodeport-addresses=primary", proxier.IPv4, addrs("198.51.100.11")},
		{"--nodeport-addresses=primary", proxier.IPv6, nil}, // the Node has no IPv6 address: every address, as kube-proxy
		{"--nodeport-addresses=10.0.0.0/8,fd00::/64", proxier.IPv6, addrs("fd00::5")},
		{"--nodeport-addresses=10.0.0.0/8", proxier.IPv6, nil},       // no entry of the family: every address, as kube-proxy
		{"--nodeport-addresses=192.0.2.0/24", proxier.IPv4, addrs()}, // none matches: listen nowhere
		{"--nodeport-addresses=0.0.0.0/1,128.0.0.0/1", proxier.IPv4, addrs("127.0.0.1", "198.51.100.11", "10.0.0.5", "169.254.20.10")},
		{"--nodeport-addresses=::/1,8000::/1", proxier.IPv6, addrs("fd00::5")},
		{"--nodeport-addresses=10.96.0.0/16,fd00::/8,fe80::/10", proxier.IPv4, addrs()},
		{"--nodeport-addresses=10.96.0.0/16,fd00::/8,fe80::/10", proxier.IPv6, addrs("fd00::5")},
	} {
		var args []string
		if tc.flag != "" {
			args = []string{tc.flag}
		}
		o, err := parseOptions(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := healthCheckAddresses(o.Config, tc.family, node, iface); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.flag, tc.family, got, tc.want)
		}
	}
}
