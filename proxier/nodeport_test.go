package proxier

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func TestNodePortAddressesFor(t *testing.T) {
	tests := []struct {
		family  Family
		entries []string
		want    []string
	}{
		{IPv4, nil, nil},
		{IPv4, []string{"10.0.0.0/8", "fd00::/64", "primary"}, []string{"10.0.0.0/8", "primary"}},
		{IPv6, []string{"10.0.0.0/8", "fd00::/64"}, []string{"fd00::/64"}},
		{IPv6, []string{"10.0.0.0/8"}, nil}, // no entry of the family: all addresses, as kube-proxy
		{IPv4, []string{"10.1.2.3/8", "0.0.0.0/0"}, nil},
		{IPv6, []string{"::/0"}, nil},
	}
	for _, tc := range tests {
		if got := NodePortAddressesFor(tc.family, tc.entries); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %v = %v, want %v", tc.family, tc.entries, got, tc.want)
		}
	}
}

// "primary" for a family the node has no address of is left out, and with
// nothing left every address of that family answers, as kube-proxy's
// start-up turns "primary" into the node IP of each family it has.
func TestWithPrimary(t *testing.T) {
	ip := netip.MustParseAddr("fd00::11")
	tests := []struct {
		entries []string
		primary netip.Addr
		want    []string
	}{
		{[]string{"primary"}, ip, []string{"primary"}},
		{[]string{"primary"}, netip.Addr{}, nil},
		{[]string{"primary", "fd00::/64"}, netip.Addr{}, []string{"fd00::/64"}},
		{[]string{"fd00::/64"}, netip.Addr{}, []string{"fd00::/64"}},
		{nil, netip.Addr{}, nil},
	}
	for _, tc := range tests {
		if got := WithPrimary(tc.entries, tc.primary); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v with primary %v = %v, want %v", tc.entries, tc.primary, got, tc.want)
		}
	}
}

func TestSelectNodeAddresses(t *testing.T) {
	a := func(s ...string) []netip.Addr {
		out := []netip.Addr{}
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	cands := a("198.51.100.11", "10.0.0.5", "127.0.0.1", "10.0.0.5")
	primary := netip.MustParseAddr("198.51.100.11")
	tests := []struct {
		entries []string
		want    []netip.Addr
	}{
		{nil, a("198.51.100.11", "10.0.0.5", "127.0.0.1")},
		{[]string{"10.0.0.0/8"}, a("10.0.0.5")},
		{[]string{"primary"}, a("198.51.100.11")},
		{[]string{"primary", "127.0.0.0/8"}, a("198.51.100.11", "127.0.0.1")},
		{[]string{"192.0.2.0/24"}, a()},
	}
	for _, tc := range tests {
		if got := SelectNodeAddresses(tc.entries, primary, cands); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v = %v, want %v", tc.entries, got, tc.want)
		}
	}
}

// NodePort destinations are typed once for every mode: a CIDR also needs
// the destination to be a local address (the node must not capture what
// it routes to other hosts in that CIDR); "primary" is the node's address;
// nothing of this family means every local address.
func TestNodePortDests(t *testing.T) {
	primary := netip.MustParseAddr("198.51.100.11")
	got := NodePortDests(IPv4, []string{"primary", " 10.0.0.0/8", "fd00::/64"}, primary)
	want := []NodePortDest{{Prefix: netip.MustParsePrefix("198.51.100.11/32")}, {Prefix: netip.MustParsePrefix("10.0.0.0/8"), Local: true}}
	if !slices.Equal(got, want) {
		t.Errorf("dests %+v, want %+v", got, want)
	}
	if got := NodePortDests(IPv6, []string{"10.0.0.0/8", "::/0"}, netip.Addr{}); !slices.Equal(got, []NodePortDest{{All: true}}) {
		t.Errorf("IPv6 dests %+v, want every local address", got)
	}
	if got := NodePortDests(IPv6, []string{"primary"}, netip.Addr{}); !slices.Equal(got, []NodePortDest{{All: true}}) {
		t.Errorf("primary without an address of the family: %+v, want every local address", got)
	}
}
