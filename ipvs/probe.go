package ipvs

import (
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ProbeIPVS checks that the kernel can run IPVS in the caller's network
// namespace: the IPVS generic netlink family answers (asking for it makes
// the kernel load ip_vs when it can) and its sysctls, which the mode
// sets, are there.
func ProbeIPVS() error {
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		return fmt.Errorf("the kernel has no IPVS (generic netlink family IPVS: %w)", err)
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/vs"); err != nil {
		return fmt.Errorf("IPVS sysctls missing: %w", err)
	}
	return nil
}

// ProbeIPSet checks that the kernel's ipset subsystem answers over
// netlink in the caller's network namespace (the kernel loads ip_set
// when it can).
func ProbeIPSet() error {
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("open netfilter netlink: %w", err)
	}
	defer h.Close()
	if err := ipsetCall(func() error { _, _, err := h.IpsetProtocol(); return err }); err != nil {
		return fmt.Errorf("the kernel has no ipset (ip_set): %w", err)
	}
	return nil
}
