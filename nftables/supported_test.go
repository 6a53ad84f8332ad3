package nftables

import "testing"

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"5.13.0", true},
		{"5.12.19-generic", false},
		{"6.1.0-13-amd64", true},
		{"4.19.0", false},
		{"5.4", false},
		{"5.15+", true},
		{"garbage", true},
	} {
		if got := kernelAtLeast(tc.release, minKernel); got != tc.want {
			t.Errorf("kernelAtLeast(%q) = %v, want %v", tc.release, got, tc.want)
		}
	}
}
