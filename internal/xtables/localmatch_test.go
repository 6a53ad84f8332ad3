package xtables

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/kproxy/kproxy/proxier"
)

func TestLocalMatch(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")
	tests := []struct {
		name          string
		d             proxier.LocalDetector
		family        proxier.Family
		local, remote []string
	}{
		{"none", proxier.LocalDetector{}, proxier.IPv4, nil, nil},
		{"cidr v4", proxier.DetectLocalByCIDR(v6, netip.MustParsePrefix("10.244.1.7/16")), proxier.IPv4,
			[]string{"-s", "10.244.0.0/16"}, []string{"!", "-s", "10.244.0.0/16"}},
		{"cidr v6", proxier.DetectLocalByCIDR(v4, v6), proxier.IPv6, []string{"-s", "fd00:244::/48"}, []string{"!", "-s", "fd00:244::/48"}},
		{"cidr of another family", proxier.DetectLocalByCIDR(v4), proxier.IPv6, nil, nil},
		{"bridge", proxier.DetectLocalByBridge("cbr0"), proxier.IPv6, []string{"-i", "cbr0"}, []string{"!", "-i", "cbr0"}},
		{"prefix", proxier.DetectLocalByInterfacePrefix("veth"), proxier.IPv4, []string{"-i", "veth+"}, []string{"!", "-i", "veth+"}},
		{"empty prefix", proxier.DetectLocalByInterfacePrefix(""), proxier.IPv4, nil, nil},
	}
	for _, tc := range tests {
		d := tc.d.ForFamily(tc.family)
		if got := IfLocal(d); !reflect.DeepEqual(got, tc.local) {
			t.Errorf("%s: IfLocal = %q, want %q", tc.name, got, tc.local)
		}
		if got := IfNotLocal(d); !reflect.DeepEqual(got, tc.remote) {
			t.Errorf("%s: IfNotLocal = %q, want %q", tc.name, got, tc.remote)
		}
	}
}
