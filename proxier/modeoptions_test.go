package proxier

import "testing"

func TestMasqueradeBitOrDefault(t *testing.T) {
	for _, tc := range []struct {
		bit, want int
		ok        bool
	}{
		{0, DefaultMasqueradeBit, true},
		{1, 1, true},
		{31, 31, true},
		{-1, -1, false},
		{32, 32, false},
	} {
		got, err := MasqueradeBitOrDefault(tc.bit)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("MasqueradeBitOrDefault(%d) = %d, %v; want %d, ok %v", tc.bit, got, err, tc.want, tc.ok)
		}
	}
}

func TestCheckFamily(t *testing.T) {
	for _, f := range []Family{IPv4, IPv6} {
		if err := CheckFamily(f); err != nil {
			t.Errorf("CheckFamily(%q): %v", f, err)
		}
	}
	for _, f := range []Family{"", "IPv5"} {
		if err := CheckFamily(f); err == nil {
			t.Errorf("CheckFamily(%q) accepted", f)
		}
	}
}
