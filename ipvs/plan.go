package ipvs

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// op is one kernel operation of a plan.
type op struct {
	kind string // counted in SyncResult.Written
	desc string
	n    int // objects it writes (entries of a batch), for counting
	do   func(ctx context.Context, k Kernel) error
}

// Plan is the ordered list of kernel operations that turns the current
// state into the desired one. String shows exactly what will be done.
type Plan struct {
	ops []op
	// draining lists the real servers that stay at weight 0 for now.
	draining map[drainKey]bool
}

type drainKey struct {
	vs   VSKey
	dest netip.AddrPort
}

func (p *Plan) add(kind, desc string, n int, do func(ctx context.Context, k Kernel) error) {
	p.ops = append(p.ops, op{kind, desc, n, do})
}

// String lists the operations, one a line.
func (p *Plan) String() string {
	var b strings.Builder
	for _, o := range p.ops {
		b.WriteString(o.desc)
		b.WriteString("\n")
	}
	return b.String()
}

// Len is the number of operations.
func (p *Plan) Len() int { return len(p.ops) }

// Apply runs the operations in order and stops at the first error.
func (p *Plan) Apply(ctx context.Context, k Kernel) (written map[string]int, err error) {
	written = map[string]int{}
	for _, o := range p.ops {
		if err := o.do(ctx, k); err != nil {
			return written, fmt.Errorf("%s: %w", o.desc, err)
		}
		written[o.kind] += o.n
	}
	return written, nil
}

// restoreError is the plan's iptables-restore failing: the sync reports it
// as a restore failure, which kube-proxy's ipvs mode counts too.
type restoreError struct{ error }

func (e restoreError) Unwrap() error { return e.error }

// planInput is what Plan diffs.
type planInput struct {
	cur, want *State
	opts      *Options
	// nodePortAddrs are the node addresses NodePort virtual servers use.
	nodePortAddrs []netip.Addr
	// drainSince says when each draining real server got weight 0.
	drainSince map[drainKey]time.Time
	now        time.Time
	// rules is the iptables-restore input to send, "" for none.
	rules string
	// scope, when set, limits the diff to what a partial update touched
	// (plus the draining real servers); nil diffs everything.
	scope *scope
}

// vsKeys are the virtual servers to diff, sorted.
func (in *planInput) vsKeys() []VSKey {
	keys := map[VSKey]bool{}
	if in.scope != nil {
		maps.Copy(keys, in.scope.vs)
	} else {
		for k := range in.want.VirtualServers {
			keys[k] = true
		}
		for k := range in.cur.VirtualServers {
			keys[k] = true
		}
	}
	return slices.SortedFunc(maps.Keys(keys), compareVSKeys)
}

// addrKeys are the addresses to diff, sorted.
func (in *planInput) addrKeys() []netip.Addr {
	if in.scope != nil {
		return slices.SortedFunc(maps.Keys(in.scope.addrs), netip.Addr.Compare)
	}
	keys := maps.Clone(in.want.Addrs)
	maps.Copy(keys, in.cur.Addrs)
	return slices.SortedFunc(maps.Keys(keys), netip.Addr.Compare)
}

// entryDiff returns the entries of set name to add and to delete, sorted.
func (in *planInput) entryDiff(name string) (missing, stale []string) {
	want, cur := in.want.Sets[name], in.cur.Sets[name]
	if in.scope != nil {
		for e := range in.scope.entries[name] {
			switch {
			case want[e] && !cur[e]:
				missing = append(missing, e)
			case !want[e] && cur[e]:
				stale = append(stale, e)
			}
		}
	} else {
		for e := range want {
			if !cur[e] {
				missing = append(missing, e)
			}
		}
		for e := range cur {
			if !want[e] {
				stale = append(stale, e)
			}
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	return missing, stale
}

// owned reports whether a virtual server in the kernel is kproxy's: its
// address is (or was) on kube-ipvs0, or it is a node address with a port
// in the NodePort range; never in ExcludeCIDRs.
func (in *planInput) owned(k VSKey) bool {
	if in.opts.excluded(k.Addr) {
		return false
	}
	if in.cur.Addrs[k.Addr] || in.want.Addrs[k.Addr] {
		return true
	}
	r := in.opts.NodePortRange
	return slices.Contains(in.nodePortAddrs, k.Addr) && k.Port >= r[0] && k.Port <= r[1]
}

// makePlan diffs cur against want. Order: create (interface, sets, set
// entries, addresses, virtual and real servers), then the iptables rules
// that use the sets, then removals (real servers to weight 0 or away,
// virtual servers, addresses, set entries).
func makePlan(in *planInput) *Plan {
	p := &Plan{draining: map[drainKey]bool{}}
	if len(in.want.Addrs) > 0 {
		p.add("interface", "ensure interface "+Interface, 0, func(ctx context.Context, k Kernel) error { return k.EnsureInterface(ctx) })
	}
	staleEntries := in.planSets(p)
	addrs, virtualServers := in.addrKeys(), in.vsKeys()
	in.planBinds(p, addrs)
	for _, key := range virtualServers {
		if _, ok := in.want.VirtualServers[key]; ok {
			in.planVS(p, key)
		}
	}
	in.planRestore(p)
	in.planVSRemovals(p, virtualServers)
	in.planUnbinds(p, addrs)
	in.planEntryRemovals(p, staleEntries)
	return p
}

// planSets creates the missing sets and adds the missing entries; it
// returns the stale entries of each set, removed at the end of the plan.
func (in *planInput) planSets(p *Plan) (staleEntries map[string][]string) {
	defs := ownedSets(in.opts.Family)
	staleEntries = map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(in.want.Sets)) {
		kind := defs[name].kind
		if _, ok := in.cur.Sets[name]; !ok {
			p.add("ipset", "create set "+name+" "+kind, 1, func(ctx context.Context, k Kernel) error { return k.CreateSet(ctx, name, kind) })
		}
		missing, stale := in.entryDiff(name)
		staleEntries[name] = stale
		if len(missing) > 0 {
			p.add("ipset", fmt.Sprintf("add %d entries to %s: %s", len(missing), name, abbrev(missing)), len(missing),
				func(ctx context.Context, k Kernel) error { return k.AddEntries(ctx, name, kind, missing) })
		}
	}
	return staleEntries
}

// planBinds binds the wanted addresses not yet on the interface.
func (in *planInput) planBinds(p *Plan, addrs []netip.Addr) {
	for _, addr := range addrs {
		if in.want.Addrs[addr] && !in.cur.Addrs[addr] {
			p.add("address", "bind "+addr.String(), 1, func(ctx context.Context, k Kernel) error { return k.AddAddr(ctx, addr) })
		}
	}
}

// planRestore sends the iptables rules, if any.
func (in *planInput) planRestore(p *Plan) {
	if in.rules == "" {
		return
	}
	rules := in.rules
	p.add("iptables", fmt.Sprintf("iptables-restore (%d rules)", strings.Count(rules, "\n-")), countAll(rules),
		func(ctx context.Context, k Kernel) error {
			if err := k.Restore(ctx, []byte(rules), false); err != nil {
				return restoreError{err}
			}
			return nil
		})
}

// planVSRemovals deletes our virtual servers that are no longer wanted.
func (in *planInput) planVSRemovals(p *Plan, virtualServers []VSKey) {
	for _, key := range virtualServers {
		_, wanted := in.want.VirtualServers[key]
		if _, ok := in.cur.VirtualServers[key]; ok && !wanted && in.owned(key) {
			p.add("ipvs", "delete virtual server "+key.String(), 1, func(ctx context.Context, k Kernel) error {
				return ignoreNotExist(k.DeleteVirtualServer(ctx, key))
			})
		}
	}
}

// planUnbinds unbinds the addresses no longer wanted (never an excluded
// one).
func (in *planInput) planUnbinds(p *Plan, addrs []netip.Addr) {
	for _, addr := range addrs {
		if in.cur.Addrs[addr] && !in.want.Addrs[addr] && !in.opts.excluded(addr) {
			p.add("address", "unbind "+addr.String(), 1, func(ctx context.Context, k Kernel) error { return ignoreNotExist(k.DeleteAddr(ctx, addr)) })
		}
	}
}

// planEntryRemovals deletes the stale entries planSets found.
func (in *planInput) planEntryRemovals(p *Plan, staleEntries map[string][]string) {
	defs := ownedSets(in.opts.Family)
	for _, name := range slices.Sorted(maps.Keys(in.want.Sets)) {
		if stale := staleEntries[name]; len(stale) > 0 {
			kind := defs[name].kind
			p.add("ipset", fmt.Sprintf("delete %d entries from %s: %s", len(stale), name, abbrev(stale)), len(stale),
				func(ctx context.Context, k Kernel) error { return k.DeleteEntries(ctx, name, kind, stale) })
		}
	}
}

// planVS plans one desired virtual server and its real servers.
func (in *planInput) planVS(p *Plan, key VSKey) {
	wanted := in.want.VirtualServers[key]
	current, exists := in.cur.VirtualServers[key]
	if !exists {
		p.add("ipvs", fmt.Sprintf("add virtual server %s %s timeout %d", key, wanted.Scheduler, wanted.Timeout), 1,
			func(ctx context.Context, k Kernel) error { return k.AddVirtualServer(ctx, wanted) })
		current = &VirtualServer{}
	} else if !wanted.sameConfig(current) {
		p.add("ipvs", fmt.Sprintf("update virtual server %s %s timeout %d", key, wanted.Scheduler, wanted.Timeout), 1,
			func(ctx context.Context, k Kernel) error { return k.UpdateVirtualServer(ctx, wanted) })
	}
	for _, dest := range slices.SortedFunc(maps.Keys(wanted.Dests), netip.AddrPort.Compare) {
		weight := wanted.Dests[dest].Weight
		currentDest, ok := current.Dests[dest]
		switch {
		case !ok:
			p.add("ipvs", fmt.Sprintf("add real server %s -> %s weight %d", key, dest, weight), 1,
				func(ctx context.Context, k Kernel) error { return k.AddDest(ctx, key, dest, weight) })
		case currentDest.Weight != weight:
			p.add("ipvs", fmt.Sprintf("set real server %s -> %s weight %d", key, dest, weight), 1,
				func(ctx context.Context, k Kernel) error { return k.UpdateDest(ctx, key, dest, weight) })
		}
	}
	for _, dest := range slices.SortedFunc(maps.Keys(current.Dests), netip.AddrPort.Compare) {
		if _, ok := wanted.Dests[dest]; !ok {
			in.planGoneDest(p, key, dest, current.Dests[dest])
		}
	}
}

// planGoneDest deletes a real server that left the virtual server, or
// drains it first: a TCP real server with connections gets weight 0 until
// they end or DrainTimeout passes.
func (in *planInput) planGoneDest(p *Plan, key VSKey, dest netip.AddrPort, current Dest) {
	drain := drainKey{key, dest}
	since, draining := in.drainSince[drain]
	switch {
	case key.Proto != "TCP" || (current.Weight == 0 && current.ActiveConns == 0 && current.InactiveConns == 0) ||
		(draining && in.now.Sub(since) >= in.opts.DrainTimeout):
		p.add("ipvs", fmt.Sprintf("delete real server %s -> %s", key, dest), 1,
			func(ctx context.Context, k Kernel) error { return ignoreNotExist(k.DeleteDest(ctx, key, dest)) })
	case current.Weight != 0:
		p.draining[drain] = true
		p.add("ipvs", fmt.Sprintf("drain real server %s -> %s (weight 0)", key, dest), 1,
			func(ctx context.Context, k Kernel) error { return k.UpdateDest(ctx, key, dest, 0) })
	default:
		p.draining[drain] = true
	}
}

func ignoreNotExist(err error) error {
	if IsNotExist(err) {
		return nil
	}
	return err
}

func countAll(rules string) int {
	n := 0
	for _, c := range countRules(rules) {
		n += c
	}
	return n
}

// abbrev shows the first few items of a long list.
func abbrev(items []string) string {
	if len(items) <= 4 {
		return strings.Join(items, " ")
	}
	return strings.Join(items[:4], " ") + fmt.Sprintf(" ... (%d more)", len(items)-4)
}
