package proxier

import (
	"fmt"
	"net/netip"
	"strings"
)

// LocalDetector tells traffic from pods (local traffic) apart from other
// traffic, as kube-proxy's --detect-local-mode says: by source CIDR
// (ClusterCIDR, NodeCIDR) or by incoming interface (BridgeInterface,
// InterfaceNamePrefix). Every backend takes its iptables matches from here,
// so none re-derives them. The zero value detects nothing: only
// masqueradeAll masquerades ClusterIP traffic then.
type LocalDetector struct {
	cidrs []netip.Prefix // by source; at most one per family matters
	iface string         // by incoming interface: "-i" argument ("cbr0", "veth+")
}

// DetectLocalByCIDR detects local traffic by its source address: the
// cluster CIDRs, or this node's pod CIDRs.
func DetectLocalByCIDR(cidrs ...netip.Prefix) LocalDetector {
	var d LocalDetector
	for _, c := range cidrs {
		if c.IsValid() {
			d.cidrs = append(d.cidrs, c.Masked())
		}
	}
	return d
}

// DetectLocalByBridge detects local traffic as arriving on the pods'
// bridge (BridgeInterface, --pod-bridge-interface).
func DetectLocalByBridge(bridge string) LocalDetector {
	return LocalDetector{iface: bridge}
}

// DetectLocalByInterfacePrefix detects local traffic as arriving on an
// interface whose name starts with prefix (InterfaceNamePrefix,
// --pod-interface-name-prefix); iptables' "+" is the wildcard.
func DetectLocalByInterfacePrefix(prefix string) LocalDetector {
	if prefix == "" {
		return LocalDetector{}
	}
	return LocalDetector{iface: prefix + "+"}
}

// ForFamily returns the detector for one IP family's rules: the first
// CIDR of that family (iptables takes one -s per rule; kube-proxy has one
// per family). Interface detectors apply to both families as they are.
func (d LocalDetector) ForFamily(f Family) LocalDetector {
	if d.iface != "" {
		return d
	}
	for _, c := range d.cidrs {
		if FamilyOf(c.Addr()) == f {
			return LocalDetector{cidrs: []netip.Prefix{c}}
		}
	}
	return LocalDetector{}
}

// IsImplemented reports whether the detector detects anything.
func (d LocalDetector) IsImplemented() bool { return d.iface != "" || len(d.cidrs) > 0 }

// IfLocal returns the iptables match of local traffic; nil if none.
func (d LocalDetector) IfLocal() []string {
	switch {
	case d.iface != "":
		return []string{"-i", d.iface}
	case len(d.cidrs) > 0:
		return []string{"-s", d.cidrs[0].String()}
	}
	return nil
}

// IfNotLocal returns the iptables match of non-local traffic; nil if none.
func (d LocalDetector) IfNotLocal() []string {
	if m := d.IfLocal(); m != nil {
		return append([]string{"!"}, m...)
	}
	return nil
}

// CIDR returns the source CIDR of a CIDR-based detector (after ForFamily):
// what a backend that classifies addresses rather than packets can use.
// false for interface-based detectors, which addresses cannot express.
func (d LocalDetector) CIDR() (netip.Prefix, bool) {
	if d.iface != "" || len(d.cidrs) == 0 {
		return netip.Prefix{}, false
	}
	return d.cidrs[0], true
}

// String describes the detector for logs.
func (d LocalDetector) String() string {
	if !d.IsImplemented() {
		return "none"
	}
	return strings.Join(d.IfLocal(), " ")
}

// ValidInterfaceName reports why name cannot be used as an interface in an
// iptables match (-i name), nil if it can: what the kernel's dev_valid_name
// accepts, minus "+", "!" and quotes, which iptables or its restore syntax
// would read as something else. A bad name then fails at start rather than
// every restore.
func ValidInterfaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("must not be empty")
	case len(name) > 15:
		return fmt.Errorf("%q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not an interface name", name)
	case strings.ContainsAny(name, "/:+!\"'"):
		return fmt.Errorf("%q contains one of / : + ! or a quote", name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%q contains a space or control character", name)
		}
	}
	return nil
}

// ValidInterfacePrefix is ValidInterfaceName for a name prefix: iptables
// matches it as "prefix+", and that must fit the 15 bytes of a name.
func ValidInterfacePrefix(prefix string) error {
	if err := ValidInterfaceName(prefix); err != nil {
		return err
	}
	if len(prefix) > 14 {
		return fmt.Errorf("%q is longer than 14 bytes (iptables matches it as %q, at most 15)", prefix, prefix+"+")
	}
	return nil
}
