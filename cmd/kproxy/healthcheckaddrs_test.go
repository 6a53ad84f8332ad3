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
	iface := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")}
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
		{"--nodeport-addresses=10.0.0.0/8,fd00::/64", proxier.IPv6, addrs("fd00::5")},
		{"--nodeport-addresses=10.0.0.0/8", proxier.IPv6, nil},       // no entry of the family: every address, as kube-proxy
		{"--nodeport-addresses=192.0.2.0/24", proxier.IPv4, addrs()}, // none matches: listen nowhere
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
