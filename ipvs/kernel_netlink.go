package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kproxy/kproxy/proxier"
)

func (r *realKernel) nlFamily() int {
	if r.family == proxier.IPv6 {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

func (r *realKernel) link() (netlink.Link, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	return r.nl.LinkByName(Interface)
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func (r *realKernel) EnsureInterface(ctx context.Context) error {
	if _, err := r.link(); err == nil || !isLinkNotFound(err) {
		return err
	}
	// Like kube-proxy, the interface stays down: the kernel still adds a
	// local route for each address, and nothing is sent from it.
	d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: Interface}}
	if err := r.nl.LinkAdd(d); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("create %s: %w", Interface, err)
	}
	return nil
}

func (r *realKernel) DeleteInterface(ctx context.Context) error {
	l, err := r.link()
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.nl.LinkDel(l)
}

func (r *realKernel) ListAddrs(ctx context.Context) (map[netip.Addr]bool, error) {
	out := map[netip.Addr]bool{}
	l, err := r.link()
	if isLinkNotFound(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	addrs, err := r.nl.AddrList(l, r.nlFamily())
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && !ip.IsLinkLocalUnicast() {
			if r.family == proxier.IPv4 {
				ip = ip.Unmap()
			}
			out[ip] = true
		}
	}
	return out, nil
}

func hostAddr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
}

func (r *realKernel) AddAddr(ctx context.Context, a netip.Addr) error {
	l, err := r.link()
	if err != nil {
		return err
	}
	na := hostAddr(a)
	if a.Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return r.nl.AddrAdd(l, na)
}

func (r *realKernel) DeleteAddr(ctx context.Context, a netip.Addr) error {
	l, err := r.link()
	if err != nil {
		return err
	}
	return r.nl.AddrDel(l, hostAddr(a))
}

// ipsetCall runs one netlink ipset call. netlink v1.3.1 type-asserts
// every error to syscall.Errno and panics on others (e.g. a socket
// timeout); this turns such a panic back into an error.
func ipsetCall(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ipset netlink call failed: %v", p)
		}
	}()
	return fn()
}

func (r *realKernel) ListSets(ctx context.Context, names []string) (map[string]map[string]bool, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	kinds := ownedSets(r.family)
	for _, n := range names {
		var res *netlink.IPSetResult
		err := ipsetCall(func() (err error) { res, err = r.nl.IpsetList(n); return err })
		if errors.Is(err, syscall.ENOENT) {
			continue // no such set
		}
		if err != nil {
			return nil, fmt.Errorf("list set %s: %w", n, err)
		}
		m := map[string]bool{}
		for _, e := range res.Entries {
			m[entryFromNetlink(e).String(kinds[n].kind)] = true
		}
		out[n] = m
	}
	return out, nil
}

func entryFromNetlink(e netlink.IPSetEntry) SetEntry {
	var s SetEntry
	s.IP, _ = netip.AddrFromSlice(e.IP)
	s.IP = s.IP.Unmap()
	if e.Port != nil {
		s.Port = *e.Port
	}
	if e.Protocol != nil {
		s.Proto = protoOf(uint16(*e.Protocol))
	}
	if e.IP2 != nil {
		a, _ := netip.AddrFromSlice(e.IP2)
		a = a.Unmap()
		bits := int(e.CIDR2)
		if bits == 0 {
			bits = a.BitLen()
		}
		s.IP2 = netip.PrefixFrom(a, bits)
	}
	return s
}

func entryToNetlink(s SetEntry, kind string) *netlink.IPSetEntry {
	e := &netlink.IPSetEntry{IP: s.IP.AsSlice()}
	if s.Proto != "" {
		port, proto := s.Port, uint8(protoNums[s.Proto])
		e.Port, e.Protocol = &port, &proto
	}
	if s.IP2.IsValid() {
		e.IP2 = s.IP2.Addr().AsSlice()
		if kind == "hash:ip,port,net" {
			e.CIDR2 = uint8(s.IP2.Bits())
		}
	}
	return e
}

func (r *realKernel) CreateSet(ctx context.Context, name, kind string) error {
	if err := r.open(); err != nil {
		return err
	}
	fam := uint8(unix.AF_INET)
	if r.family == proxier.IPv6 {
		fam = unix.AF_INET6
	}
	return ipsetCall(func() error {
		return r.nl.IpsetCreate(name, kind, netlink.IpsetCreateOptions{Family: fam})
	})
}

func (r *realKernel) DestroySet(ctx context.Context, name string) error {
	if err := r.open(); err != nil {
		return err
	}
	return ipsetCall(func() error { return r.nl.IpsetDestroy(name) })
}

func (r *realKernel) entries(set, kind string, entries []string, add bool) error {
	if err := r.open(); err != nil {
		return err
	}
	for _, s := range entries {
		pe, err := ParseEntry(s)
		if err != nil {
			return err
		}
		e := entryToNetlink(pe, kind)
		err = ipsetCall(func() error {
			if add {
				return r.nl.IpsetAdd(set, e)
			}
			return r.nl.IpsetDel(set, e)
		})
		if err != nil {
			return fmt.Errorf("%s %s: %w", set, s, err)
		}
	}
	return nil
}

func (r *realKernel) AddEntries(ctx context.Context, set, kind string, entries []string) error {
	return r.entries(set, kind, entries, true)
}

func (r *realKernel) DeleteEntries(ctx context.Context, set, kind string, entries []string) error {
	return r.entries(set, kind, entries, false)
}
