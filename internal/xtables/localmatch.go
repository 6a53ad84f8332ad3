package xtables

import "github.com/kproxy/kproxy/proxier"

// IfLocal returns the iptables match of the traffic d detects as local
// (from pods): "-s cidr", "-i bridge" or "-i prefix+" ("+" is iptables'
// name wildcard); nil if d detects nothing. d is one family's detector
// (proxier.LocalDetector.ForFamily): a rule matches one source CIDR.
func IfLocal(d proxier.LocalDetector) []string {
	if name, isPrefix := d.Interface(); name != "" {
		if isPrefix {
			name += "+"
		}
		return []string{"-i", name}
	}
	if cidr, ok := d.CIDR(); ok {
		return []string{"-s", cidr.String()}
	}
	return nil
}

// IfNotLocal returns the iptables match of the traffic that IfLocal does
// not match; nil if d detects nothing.
func IfNotLocal(d proxier.LocalDetector) []string {
	if m := IfLocal(d); m != nil {
		return append([]string{"!"}, m...)
	}
	return nil
}
