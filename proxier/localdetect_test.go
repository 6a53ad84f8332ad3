package proxier

import (
	"net/netip"
	"testing"
)

func TestLocalDetector(t *testing.T) {
	v4, v6 := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/48")
	tests := []struct {
		name     string
		d        LocalDetector
		family   Family
		cidr     string
		iface    string
		isPrefix bool
		str      string
	}{
		{"none", LocalDetector{}, IPv4, "", "", false, "none"},
		{"cidr v4", DetectLocalByCIDR(v6, netip.MustParsePrefix("10.244.1.7/16")), IPv4, "10.244.0.0/16", "", false, "source 10.244.0.0/16"},
		{"cidr v6", DetectLocalByCIDR(v4, v6), IPv6, "fd00:244::/48", "", false, "source fd00:244::/48"},
		{"cidr of another family", DetectLocalByCIDR(v4), IPv6, "", "", false, "none"},
		{"bridge", DetectLocalByBridge("cbr0"), IPv6, "", "cbr0", false, "interface cbr0"},
		{"prefix", DetectLocalByInterfacePrefix("veth"), IPv4, "", "veth", true, "interface name prefix veth"},
		{"empty prefix", DetectLocalByInterfacePrefix(""), IPv4, "", "", false, "none"},
	}
	for _, tc := range tests {
		d := tc.d.ForFamily(tc.family)
		c, ok := d.CIDR()
		if ok != (tc.cidr != "") || ok && c.String() != tc.cidr {
			t.Errorf("%s: CIDR = %v, %v, want %q", tc.name, c, ok, tc.cidr)
		}
		if name, isPrefix := d.Interface(); name != tc.iface || isPrefix != tc.isPrefix {
			t.Errorf("%s: Interface = %q, %v, want %q, %v", tc.name, name, isPrefix, tc.iface, tc.isPrefix)
		}
		if d.IsImplemented() != (tc.cidr != "" || tc.iface != "") {
			t.Errorf("%s: IsImplemented = %v", tc.name, d.IsImplemented())
		}
		if got := d.String(); got != tc.str {
			t.Errorf("%s: String = %q, want %q", tc.name, got, tc.str)
		}
	}
	// Both families' CIDRs show in the startup log line.
	if got := DetectLocalByCIDR(v4, v6).String(); got != "source 10.244.0.0/16, fd00:244::/48" {
		t.Errorf("dual-stack String = %q", got)
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
