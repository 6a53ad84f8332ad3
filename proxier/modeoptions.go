package proxier

import "fmt"

// The checks below are of the options every mode takes with the same
// meaning (Family, the masquerade bit, NodePortAddresses; LocalDetector
// has ForFamily), so that each mode's Options keeps flat, documented
// fields and still checks them one way.

// DefaultMasqueradeBit is kube-proxy's default --iptables-masquerade-bit
// and --nftables-masquerade-bit: mark 0x4000.
const DefaultMasqueradeBit = 14

// CheckFamily reports a family that is neither IPv4 nor IPv6.
func CheckFamily(f Family) error {
	switch f {
	case IPv4, IPv6:
		return nil
	}
	return fmt.Errorf("unknown IP family %q", f)
}

// MasqueradeBitOrDefault is bit, or DefaultMasqueradeBit for 0 (so bit 0
// itself cannot be chosen, as in kube-proxy); outside 0-31 it is an error.
func MasqueradeBitOrDefault(bit int) (int, error) {
	if bit == 0 {
		return DefaultMasqueradeBit, nil
	}
	if bit < 0 || bit > 31 {
		return bit, fmt.Errorf("masquerade bit %d out of range 0-31", bit)
	}
	return bit, nil
}
