package ipvs

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// IPVS service flags (include/uapi/linux/ip_vs.h).
const svcFlagPersistent = 0x1

// NewKernel returns the real Kernel for one family, working in the network
// namespace at netnsPath ("" for the process's own). It opens nothing until
// first used.
func NewKernel(f proxier.Family, netnsPath string) Kernel {
	return newKernel(f, netnsPath, xtables.Plain)
}

// newKernel is NewKernel running backend's iptables binaries.
func newKernel(f proxier.Family, netnsPath string, backend xtables.Backend) Kernel {
	return &realKernel{family: f, ns: netnsPath, backend: backend}
}

type realKernel struct {
	family  proxier.Family
	ns      string
	backend xtables.Backend

	once sync.Once
	err  error
	ipvs *ipvs.Handle
	nl   *netlink.Handle

	iptOnce sync.Once
	iptErr  error
	ipt     *xtables.Runner
}

func (r *realKernel) open() error {
	r.once.Do(func() {
		if r.ipvs, r.err = ipvs.New(r.ns); r.err != nil {
			r.err = fmt.Errorf("open IPVS (is ip_vs loaded?): %w", r.err)
			return
		}
		fams := []int{unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER}
		if r.ns == "" {
			r.nl, r.err = netlink.NewHandle(fams...)
		} else {
			var h netns.NsHandle
			if h, r.err = netns.GetFromPath(r.ns); r.err == nil {
				r.nl, r.err = netlink.NewHandleAt(h, fams...)
				h.Close()
			}
		}
		if r.err != nil {
			r.err = fmt.Errorf("open netlink: %w", r.err)
		}
	})
	return r.err
}

func (r *realKernel) af() uint16 {
	if r.family == proxier.IPv6 {
		return syscall.AF_INET6
	}
	return syscall.AF_INET
}

var protoNums = map[Protocol]uint16{"TCP": syscall.IPPROTO_TCP, "UDP": syscall.IPPROTO_UDP, "SCTP": syscall.IPPROTO_SCTP}

func protoOf(n uint16) Protocol {
	for p, v := range protoNums {
		if v == n {
			return p
		}
	}
	return Protocol(fmt.Sprint(n))
}

func (r *realKernel) svc(k VSKey) *ipvs.Service {
	s := &ipvs.Service{Address: net.IP(k.Addr.AsSlice()), Protocol: protoNums[k.Proto], Port: k.Port,
		AddressFamily: r.af(), Netmask: 0xffffffff}
	if r.family == proxier.IPv6 {
		s.Netmask = 128
	}
	return s
}

func (r *realKernel) ListVirtualServers(ctx context.Context) (map[VSKey]*VirtualServer, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	svcs, err := r.ipvs.GetServices()
	if err != nil {
		return nil, err
	}
	out := map[VSKey]*VirtualServer{}
	for _, s := range svcs {
		if s.AddressFamily != r.af() || s.FWMark != 0 {
			continue
		}
		a, ok := netip.AddrFromSlice(s.Address)
		if !ok {
			continue
		}
		if r.family == proxier.IPv4 {
			a = a.Unmap()
		}
		v := &VirtualServer{VSKey: VSKey{protoOf(s.Protocol), a, s.Port}, Scheduler: s.SchedName}
		if s.Flags&svcFlagPersistent != 0 {
			v.Timeout = s.Timeout
		}
		if v.Dests, err = r.dests(s); err != nil {
			return nil, err
		}
		out[v.VSKey] = v
	}
	return out, nil
}

func (r *realKernel) dests(s *ipvs.Service) (map[netip.AddrPort]Dest, error) {
	ds, err := r.ipvs.GetDestinations(s)
	if err != nil {
		return nil, fmt.Errorf("real servers of %s:%d: %w", s.Address, s.Port, err)
	}
	out := map[netip.AddrPort]Dest{}
	for _, d := range ds {
		a, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			continue
		}
		if r.family == proxier.IPv4 {
			a = a.Unmap()
		}
		out[netip.AddrPortFrom(a, d.Port)] = Dest{Weight: d.Weight, ActiveConns: d.ActiveConnections, InactiveConns: d.InactiveConnections}
	}
	return out, nil
}

func (r *realKernel) ListDests(ctx context.Context, k VSKey) (map[netip.AddrPort]Dest, error) {
	if err := r.open(); err != nil {
		return nil, err
	}
	if !r.ipvs.IsServicePresent(r.svc(k)) {
		return nil, syscall.ESRCH
	}
	return r.dests(r.svc(k))
}

func (r *realKernel) fullSvc(v *VirtualServer) *ipvs.Service {
	s := r.svc(v.VSKey)
	s.SchedName = v.Scheduler
	if v.Timeout > 0 {
		s.Flags, s.Timeout = svcFlagPersistent, v.Timeout
	}
	return s
}

func (r *realKernel) AddVirtualServer(ctx context.Context, v *VirtualServer) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.NewService(r.fullSvc(v))
}

func (r *realKernel) UpdateVirtualServer(ctx context.Context, v *VirtualServer) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.UpdateService(r.fullSvc(v))
}

func (r *realKernel) DeleteVirtualServer(ctx context.Context, k VSKey) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.DelService(r.svc(k))
}

func (r *realKernel) dest(d netip.AddrPort, w int) *ipvs.Destination {
	return &ipvs.Destination{Address: net.IP(d.Addr().AsSlice()), Port: d.Port(), Weight: w,
		ConnectionFlags: ipvs.ConnectionFlagMasq, AddressFamily: r.af()}
}

func (r *realKernel) AddDest(ctx context.Context, k VSKey, d netip.AddrPort, w int) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.NewDestination(r.svc(k), r.dest(d, w))
}

func (r *realKernel) UpdateDest(ctx context.Context, k VSKey, d netip.AddrPort, w int) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.UpdateDestination(r.svc(k), r.dest(d, w))
}

func (r *realKernel) DeleteDest(ctx context.Context, k VSKey, d netip.AddrPort) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.DelDestination(r.svc(k), r.dest(d, 0))
}

func (r *realKernel) SetTimeouts(ctx context.Context, tcp, fin, udp time.Duration) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.ipvs.SetConfig(&ipvs.Config{TimeoutTCP: tcp, TimeoutTCPFin: fin, TimeoutUDP: udp})
}

func (r *realKernel) SetSysctl(ctx context.Context, key, value string) error {
	return xtables.SetSysctl(r.ns, key, value)
}

// iptables returns the runner of the family's iptables binaries in the
// namespace, made on first use.
func (r *realKernel) iptables() (*xtables.Runner, error) {
	r.iptOnce.Do(func() {
		r.ipt, r.iptErr = xtables.NewRunner(xtables.RunnerConfig{Family: r.family, Backend: r.backend, Netns: r.ns})
	})
	return r.ipt, r.iptErr
}

func (r *realKernel) Restore(ctx context.Context, data []byte, counters bool) error {
	ipt, err := r.iptables()
	if err != nil {
		return err
	}
	return ipt.Restore(ctx, data, counters)
}

func (r *realKernel) Save(ctx context.Context, table string) ([]byte, error) {
	ipt, err := r.iptables()
	if err != nil {
		return nil, err
	}
	return ipt.Save(ctx, table)
}
