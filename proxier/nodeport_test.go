package proxier

import (
	"reflect"
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
