package proxier

import (
	"fmt"
	"net/netip"
	"strings"
)

// LocalDetector tells traffic from pods (local traffic) apart from other
// traffic, as kube-proxy's --detect-local-mode says: by source CIDR
// (ClusterCIDR, NodeCIDR) or by incoming interface (BridgeInterface,
// InterfaceNamePrefix). It holds values, not rules: each backend turns
// them into its own matches (the iptables family through xtables), so
// none re-derives the policy. The zero value detects nothing: only
// masqueradeAll masquerades ClusterIP traffic then.
type LocalDetector struct {
	cidrs       []netip.Prefix // by source; at most one per family matters
	iface       string         // by incoming interface: its name, or a name prefix
	ifacePrefix bool           // iface is a prefix of the interfaces' names
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
// --pod-interface-name-prefix).
func DetectLocalByInterfacePrefix(prefix string) LocalDetector {
	if prefix == "" {
		return LocalDetector{}
	}
	return LocalDetector{iface: prefix, ifacePrefix: true}
}

// ForFamily returns the detector for one IP family's rules: the first
// CIDR of that family (a rule matches one source CIDR; kube-proxy has one
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

// CIDR returns the source CIDR of a CIDR-based detector (after ForFamily):
// what a backend that classifies addresses rather than packets can use.
// false for interface-based detectors, which addresses cannot express.
func (d LocalDetector) CIDR() (netip.Prefix, bool) {
	if d.iface != "" || len(d.cidrs) == 0 {
		return netip.Prefix{}, false
	}
	return d.cidrs[0], true
}

// Interface returns the incoming interface of an interface-based
// detector: a name (the bridge), or with isPrefix the start of the names
// (the pods' interfaces). name is "" for other detectors.
func (d LocalDetector) Interface() (name string, isPrefix bool) {
	return d.iface, d.ifacePrefix
}

// String describes the detector for logs, e.g. "source 10.244.0.0/16",
// "interface cbr0" or "interface name prefix veth".
func (d LocalDetector) String() string {
	switch {
	case d.ifacePrefix:
		return "interface name prefix " + d.iface
	case d.iface != "":
		return "interface " + d.iface
	case len(d.cidrs) > 0:
		s := make([]string, len(d.cidrs))
		for i, c := range d.cidrs {
			s[i] = c.String()
		}
		return "source " + strings.Join(s, ", ")
	}
	return "none"
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
