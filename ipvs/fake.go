package ipvs

import (
	"context"
	"fmt"
	"github.com/kproxy/kproxy/internal/xtables"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fake is an in-memory Kernel that behaves like the real one: objects
// are created, updated and deleted with the kernel's errors (EEXIST,
// ENOENT, EBUSY for a set an iptables rule uses). The iptables tables,
// the sysctls and fault injection (FailOn) are those of the embedded
// xtables.Fake the modes share; it asks this one which ipsets exist.
type Fake struct {
	*xtables.Fake
	mu       sync.Mutex
	vs       map[VSKey]*VirtualServer
	iface    bool
	addrs    map[netip.Addr]bool
	sets     map[string]map[string]bool
	setKinds map[string]string
	Timeouts [3]time.Duration
	// NodeAddrs are the addresses of the node's other interfaces (what
	// ListNodeAddrs returns).
	NodeAddrs []netip.Addr
	// Ops counts the operations that changed something, by name.
	Ops map[string]int
}

// NewFake returns an empty kernel (no IPVS entries, no interface, empty
// built-in chains).
func NewFake() *Fake {
	f := &Fake{Fake: xtables.NewFake(), vs: map[VSKey]*VirtualServer{}, addrs: map[netip.Addr]bool{}, sets: map[string]map[string]bool{},
		setKinds: map[string]string{}, Ops: map[string]int{}}
	f.Fake.SetExists = func(name string) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, ok := f.sets[name]
		return ok
	}
	return f
}

// Restore implements IPTables, counting successful restores in Ops.
func (f *Fake) Restore(ctx context.Context, data []byte, counters bool) error {
	if err := f.Fake.Restore(ctx, data, counters); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done("Restore")
	return nil
}

var _ Kernel = (*Fake)(nil)

func (f *Fake) check(op string) error { return f.Fake.Injected(op) }

func (f *Fake) done(op string) { f.Ops[strings.Fields(op)[0]]++ }

func (f *Fake) ListVirtualServers(ctx context.Context) (map[VSKey]*VirtualServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ListVirtualServers"); err != nil {
		return nil, err
	}
	out := map[VSKey]*VirtualServer{}
	for k, v := range f.vs {
		out[k] = v.clone()
	}
	return out, nil
}

func (f *Fake) ListDests(ctx context.Context, k VSKey) (map[netip.AddrPort]Dest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ListDests " + k.String()); err != nil {
		return nil, err
	}
	v, ok := f.vs[k]
	if !ok {
		return nil, fmt.Errorf("ListDests %s: %w", k, syscall.ESRCH)
	}
	return maps.Clone(v.Dests), nil
}

func (f *Fake) AddVirtualServer(ctx context.Context, v *VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := "AddVirtualServer " + v.VSKey.String()
	if err := f.check(op); err != nil {
		return err
	}
	if _, ok := f.vs[v.VSKey]; ok {
		return fmt.Errorf("%s: %w", op, syscall.EEXIST)
	}
	if v.Scheduler == "" || v.Scheduler == "nosuch" {
		return fmt.Errorf("%s: scheduler %q: %w", op, v.Scheduler, syscall.ENOENT)
	}
	c := v.clone()
	c.Dests = map[netip.AddrPort]Dest{}
	f.vs[v.VSKey] = c
	f.done(op)
	return nil
}

func (f *Fake) UpdateVirtualServer(ctx context.Context, v *VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := "UpdateVirtualServer " + v.VSKey.String()
	if err := f.check(op); err != nil {
		return err
	}
	cur, ok := f.vs[v.VSKey]
	if !ok {
		return fmt.Errorf("%s: %w", op, syscall.ENOENT)
	}
	cur.Scheduler, cur.Timeout = v.Scheduler, v.Timeout
	f.done(op)
	return nil
}

func (f *Fake) DeleteVirtualServer(ctx context.Context, k VSKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := "DeleteVirtualServer " + k.String()
	if err := f.check(op); err != nil {
		return err
	}
	if _, ok := f.vs[k]; !ok {
		return fmt.Errorf("%s: %w", op, syscall.ESRCH)
	}
	delete(f.vs, k)
	f.done(op)
	return nil
}

func (f *Fake) destOp(name string, k VSKey, d netip.AddrPort, fn func(v *VirtualServer, exists bool) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := fmt.Sprintf("%s %s -> %s", name, k, d)
	if err := f.check(op); err != nil {
		return err
	}
	v, ok := f.vs[k]
	if !ok {
		return fmt.Errorf("%s: %w", op, syscall.ESRCH)
	}
	_, exists := v.Dests[d]
	if err := fn(v, exists); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	f.done(op)
	return nil
}

func (f *Fake) AddDest(ctx context.Context, k VSKey, d netip.AddrPort, w int) error {
	return f.destOp("AddDest", k, d, func(v *VirtualServer, exists bool) error {
		if exists {
			return syscall.EEXIST
		}
		v.Dests[d] = Dest{Weight: w}
		return nil
	})
}

func (f *Fake) UpdateDest(ctx context.Context, k VSKey, d netip.AddrPort, w int) error {
	return f.destOp("UpdateDest", k, d, func(v *VirtualServer, exists bool) error {
		if !exists {
			return syscall.ENOENT
		}
		cur := v.Dests[d]
		cur.Weight = w
		v.Dests[d] = cur
		return nil
	})
}

func (f *Fake) DeleteDest(ctx context.Context, k VSKey, d netip.AddrPort) error {
	return f.destOp("DeleteDest", k, d, func(v *VirtualServer, exists bool) error {
		if !exists {
			return syscall.ENOENT
		}
		delete(v.Dests, d)
		return nil
	})
}

// SetConns sets a real server's connection counts, as traffic would.
func (f *Fake) SetConns(k VSKey, d netip.AddrPort, active, inactive int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.vs[k]; ok {
		if cur, ok := v.Dests[d]; ok {
			cur.ActiveConns, cur.InactiveConns = active, inactive
			v.Dests[d] = cur
		}
	}
}

func (f *Fake) EnsureInterface(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("EnsureInterface"); err != nil {
		return err
	}
	if !f.iface {
		f.iface = true
		f.done("EnsureInterface")
	}
	return nil
}

func (f *Fake) DeleteInterface(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("DeleteInterface"); err != nil {
		return err
	}
	if f.iface {
		f.done("DeleteInterface")
	}
	f.iface = false
	f.addrs = map[netip.Addr]bool{}
	return nil
}

// HasInterface reports whether kube-ipvs0 exists.
func (f *Fake) HasInterface() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.iface }

func (f *Fake) ListAddrs(ctx context.Context) (map[netip.Addr]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ListAddrs"); err != nil {
		return nil, err
	}
	return maps.Clone(f.addrs), nil
}

func (f *Fake) ListNodeAddrs(ctx context.Context) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ListNodeAddrs"); err != nil {
		return nil, err
	}
	return slices.Clone(f.NodeAddrs), nil
}

func (f *Fake) addrOp(name string, a netip.Addr, add bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := name + " " + a.String()
	if err := f.check(op); err != nil {
		return err
	}
	switch {
	case !f.iface:
		return fmt.Errorf("%s: no %s: %w", op, Interface, syscall.ENODEV)
	case add && f.addrs[a]:
		return fmt.Errorf("%s: %w", op, syscall.EEXIST)
	case !add && !f.addrs[a]:
		return fmt.Errorf("%s: %w", op, syscall.EADDRNOTAVAIL)
	}
	if add {
		f.addrs[a] = true
	} else {
		delete(f.addrs, a)
	}
	f.done(op)
	return nil
}

func (f *Fake) AddAddr(ctx context.Context, a netip.Addr) error { return f.addrOp("AddAddr", a, true) }
func (f *Fake) DeleteAddr(ctx context.Context, a netip.Addr) error {
	return f.addrOp("DeleteAddr", a, false)
}

func (f *Fake) ListSets(ctx context.Context, names []string) (map[string]map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("ListSets"); err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for _, n := range names {
		if s, ok := f.sets[n]; ok {
			out[n] = maps.Clone(s)
		}
	}
	return out, nil
}

func (f *Fake) CreateSet(ctx context.Context, name, kind string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := "CreateSet " + name
	if err := f.check(op); err != nil {
		return err
	}
	if _, ok := f.sets[name]; ok {
		return fmt.Errorf("%s: %w", op, syscall.EEXIST)
	}
	if len(name) > 31 {
		return fmt.Errorf("%s: name too long: %w", op, syscall.EINVAL)
	}
	f.sets[name], f.setKinds[name] = map[string]bool{}, kind
	f.done(op)
	return nil
}

func (f *Fake) DestroySet(ctx context.Context, name string) error {
	// Asked before locking: the tables lock, then ask this Fake (SetExists).
	inUse := f.Fake.UsesSet(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	op := "DestroySet " + name
	if err := f.check(op); err != nil {
		return err
	}
	if _, ok := f.sets[name]; !ok {
		return fmt.Errorf("%s: %w", op, syscall.ENOENT)
	}
	if inUse {
		return fmt.Errorf("%s: in use by an iptables rule: %w", op, syscall.EBUSY)
	}
	delete(f.sets, name)
	delete(f.setKinds, name)
	f.done(op)
	return nil
}

func (f *Fake) entriesOp(name, set, kind string, entries []string, add bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := name + " " + set
	if err := f.check(op); err != nil {
		return err
	}
	s, ok := f.sets[set]
	if !ok {
		return fmt.Errorf("%s: %w", op, syscall.ENOENT)
	}
	for _, e := range entries {
		pe, err := ParseEntry(e)
		if err != nil || pe.String(f.setKinds[set]) != e {
			return fmt.Errorf("%s: entry %q does not fit %s: %w", op, e, f.setKinds[set], syscall.EINVAL)
		}
		switch {
		case add && s[e]:
			return fmt.Errorf("%s %s: %w", op, e, syscall.EEXIST)
		case !add && !s[e]:
			return fmt.Errorf("%s %s: %w", op, e, syscall.ENOENT)
		}
		if add {
			s[e] = true
		} else {
			delete(s, e)
		}
		f.done(op)
	}
	return nil
}

func (f *Fake) AddEntries(ctx context.Context, set, kind string, entries []string) error {
	return f.entriesOp("AddEntries", set, kind, entries, true)
}

func (f *Fake) DeleteEntries(ctx context.Context, set, kind string, entries []string) error {
	return f.entriesOp("DeleteEntries", set, kind, entries, false)
}

func (f *Fake) SetTimeouts(ctx context.Context, tcp, fin, udp time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("SetTimeouts"); err != nil {
		return err
	}
	f.Timeouts = [3]time.Duration{tcp, fin, udp}
	return nil
}

// Dump returns the fake kernel's state in the State.Dump format, with the
// whole iptables ruleset (built-in chains included) as iptables-save shows
// it: everything, not only kproxy's objects.
func (f *Fake) Dump() string {
	rules := f.Fake.Dump() // before locking: see DestroySet
	f.mu.Lock()
	defer f.mu.Unlock()
	// Dump only reads: the fake's own maps serve under the lock.
	return (&State{VirtualServers: f.vs, Addrs: f.addrs, Sets: f.sets, Rules: rules}).Dump()
}
