package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"time"
)

// Kernel is the seam between the ipvs mode and the kernel: IPVS (moby/ipvs),
// the kube-ipvs0 interface and its addresses (netlink), ipsets (netlink) and
// iptables (iptables-restore). NewKernel is the real one; Fake behaves
// like it in memory. Every single operation is atomic; a sequence is not
// (IPVS has no transactions), which the Proxier handles by re-reading the
// kernel on the full sync that follows any failure.
//
// It is made of one role interface per kernel facility, so that a fake of
// one facility (the iptables one, shared with the other modes) can stand
// alone.
type Kernel interface {
	VirtualServers
	Links
	IPSets
	IPTables
	Tunables
}

// VirtualServers is IPVS's table of virtual and real servers.
type VirtualServers interface {
	// ListVirtualServers returns every virtual server of the family, ours
	// or not, with its real servers and their connection counts.
	ListVirtualServers(ctx context.Context) (map[VSKey]*VirtualServer, error)
	// ListDests returns one virtual server's real servers with their
	// connection counts (ESRCH if the virtual server does not exist).
	ListDests(ctx context.Context, k VSKey) (map[netip.AddrPort]Dest, error)
	// AddVirtualServer creates v (without its real servers): EEXIST if it
	// exists.
	AddVirtualServer(ctx context.Context, v *VirtualServer) error
	// UpdateVirtualServer changes v's scheduler and persistence: ENOENT if
	// it does not exist.
	UpdateVirtualServer(ctx context.Context, v *VirtualServer) error
	// DeleteVirtualServer deletes a virtual server and its real servers.
	DeleteVirtualServer(ctx context.Context, k VSKey) error
	// AddDest, UpdateDest and DeleteDest change one real server (NAT mode).
	AddDest(ctx context.Context, k VSKey, d netip.AddrPort, weight int) error
	UpdateDest(ctx context.Context, k VSKey, d netip.AddrPort, weight int) error
	DeleteDest(ctx context.Context, k VSKey, d netip.AddrPort) error
}

// Links is the kube-ipvs0 interface, its addresses and the node's.
type Links interface {
	// EnsureInterface creates the dummy interface kube-ipvs0 (down, no
	// ARP) unless it exists.
	EnsureInterface(ctx context.Context) error
	// DeleteInterface removes kube-ipvs0; a missing one is fine.
	DeleteInterface(ctx context.Context) error
	// ListAddrs returns the family's addresses on kube-ipvs0 (none if it
	// does not exist).
	ListAddrs(ctx context.Context) (map[netip.Addr]bool, error)
	AddAddr(ctx context.Context, a netip.Addr) error
	// ListNodeAddrs returns the family's addresses of every interface but
	// kube-ipvs0, without loopback and link-local ones, sorted.
	ListNodeAddrs(ctx context.Context) ([]netip.Addr, error)
	DeleteAddr(ctx context.Context, a netip.Addr) error
}

// IPSets are the family's ipsets.
type IPSets interface {
	// ListSets returns the entries of those of the named sets that exist.
	ListSets(ctx context.Context, names []string) (map[string]map[string]bool, error)
	// CreateSet creates a set of the family (EEXIST if it exists).
	CreateSet(ctx context.Context, name, kind string) error
	// DestroySet destroys a set: EBUSY while an iptables rule uses it.
	DestroySet(ctx context.Context, name string) error
	// AddEntries and DeleteEntries change set members one by one; they
	// stop at the first failure (EEXIST / ENOENT for a present / missing
	// entry).
	AddEntries(ctx context.Context, set, kind string, entries []string) error
	DeleteEntries(ctx context.Context, set, kind string, entries []string) error
}

// IPTables is the family's iptables tables: the part of xtables.Tables
// this mode uses.
type IPTables interface {
	// Restore feeds data to iptables-restore --noflush (ip6tables-restore
	// for IPv6). Each table's COMMIT is atomic (see xtables.Tables).
	Restore(ctx context.Context, data []byte, counters bool) error
	// Save returns iptables-save -t table.
	Save(ctx context.Context, table string) ([]byte, error)
}

// Tunables are the namespace's sysctls and IPVS's timeouts.
type Tunables interface {
	// SetSysctl writes /proc/sys/<key> in the proxy's network namespace.
	SetSysctl(ctx context.Context, key, value string) error
	// SetTimeouts sets IPVS's TCP, TCP FIN and UDP timeouts (0: keep).
	SetTimeouts(ctx context.Context, tcp, tcpFin, udp time.Duration) error
}

// IsExist and IsNotExist classify the errors of Kernel operations.
func IsExist(err error) bool { return errors.Is(err, syscall.EEXIST) }
func IsNotExist(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH)
}
