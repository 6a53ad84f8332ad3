package proxier

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestLocalDetector(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")
	tests := []struct {
		name          string
		d             LocalDetector
		family        Family
		local, remote []string
		cidr          string
	}{
		{"none", LocalDetector{}, IPv4, nil, nil, ""},
		{"cidr v4", DetectLocalByCIDR(v6, netip.MustParsePrefix("10.244.1.7/16")), IPv4,
			[]string{"-s", "10.244.0.0/16"}, []string{"!", "-s", "10.244.0.0/16"}, "10.244.0.0/16"},
		{"cidr v6", DetectLocalByCIDR(v4, v6), IPv6, []string{"-s", "fd00:244::/48"}, []string{"!", "-s", "fd00:244::/48"}, "fd00:244::/48"},
		{"cidr of another family", DetectLocalByCIDR(v4), IPv6, nil, nil, ""},
		{"bridge", DetectLocalByBridge("cbr0"), IPv6, []string{"-i", "cbr0"}, []string{"!", "-i", "cbr0"}, ""},
		{"prefix", DetectLocalByInterfacePrefix("veth"), IPv4, []string{"-i", "veth+"}, []string{"!", "-i", "veth+"}, ""},
		{"empty prefix", DetectLocalByInterfacePrefix(""), IPv4, nil, nil, ""},
	}
	for _, tc := range tests {
		d := tc.d.ForFamily(tc.family)
		if got := d.IfLocal(); !reflect.DeepEqual(got, tc.local) {
			t.Errorf("%s: IfLocal = %q, want %q", tc.name, got, tc.local)
		}
		if got := d.IfNotLocal(); !reflect.DeepEqual(got, tc.remote) {
			t.Errorf("%s: IfNotLocal = %q, want %q", tc.name, got, tc.remote)
		}
		if d.IsImplemented() != (tc.local != nil) {
			t.Errorf("%s: IsImplemented = %v", tc.name, d.IsImplemented())
		}
		c, ok := d.CIDR()
		if ok != (tc.cidr != "") || ok && c.String() != tc.cidr {
			t.Errorf("%s: CIDR = %v, %v, want %q", tc.name, c, ok, tc.cidr)
		}
	}
}

func TestValidInterfaceName(t *testing.T) {
	for _, ok := range []string{"cbr0", "veth", "cali", "a", "eth0.100", "abcdefghijklmno"} {
		if err := ValidInterfaceName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "abcdefghijklmnop", ".", "..", "a/b", "a b", "veth+", "eth:0", "x\"y", "tab\t"} {
		if err := ValidInterfaceName(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	if err := ValidInterfacePrefix("abcdefghijklmn"); err != nil {
		t.Errorf("14-byte prefix: %v", err)
	}
	// "abcdefghijklmno+" is 16 bytes: iptables refuses it.
	for _, bad := range []string{"abcdefghijklmno", "", "veth+"} {
		if err := ValidInterfacePrefix(bad); err == nil {
			t.Errorf("prefix %q: accepted", bad)
		}
	}
}
