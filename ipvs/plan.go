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
	cur, want := in.cur, in.want
	if len(want.Addrs) > 0 {
		p.add("interface", "ensure interface "+Interface, 0, func(ctx context.Context, k Kernel) error { return k.EnsureInterface(ctx) })
	}
	defs := ownedSets(in.opts.Family)
	stale := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(want.Sets)) {
		kind := defs[name].kind
		if _, ok := cur.Sets[name]; !ok {
			p.add("ipset", "create set "+name+" "+kind, 1, func(ctx context.Context, k Kernel) error { return k.CreateSet(ctx, name, kind) })
		}
		missing, old := in.entryDiff(name)
		stale[name] = old
		if len(missing) > 0 {
			p.add("ipset", fmt.Sprintf("add %d entries to %s: %s", len(missing), name, abbrev(missing)), len(missing),
				func(ctx context.Context, k Kernel) error { return k.AddEntries(ctx, name, kind, missing) })
		}
	}
	addrs := in.addrKeys()
	for _, a := range addrs {
		if want.Addrs[a] && !cur.Addrs[a] {
			p.add("address", "bind "+a.String(), 1, func(ctx context.Context, k Kernel) error { return k.AddAddr(ctx, a) })
		}
	}
	vss := in.vsKeys()
	for _, key := range vss {
		if _, ok := want.VirtualServers[key]; ok {
			in.planVS(p, key)
		}
	}
	if in.rules != "" {
		rules := in.rules
		p.add("iptables", fmt.Sprintf("iptables-restore (%d rules)", strings.Count(rules, "\n-")), countAll(rules),
			func(ctx context.Context, k Kernel) error {
				if err := k.Restore(ctx, []byte(rules), false); err != nil {
					return restoreError{err}
				}
				return nil
			})
	}
	for _, key := range vss {
		_, wanted := want.VirtualServers[key]
		if _, ok := cur.VirtualServers[key]; ok && !wanted && in.owned(key) {
			p.add("ipvs", "delete virtual server "+key.String(), 1, func(ctx context.Context, k Kernel) error {
				return ignoreNotExist(k.DeleteVirtualServer(ctx, key))
			})
		}
	}
	for _, a := range addrs {
		if cur.Addrs[a] && !want.Addrs[a] && !in.opts.excluded(a) {
			p.add("address", "unbind "+a.String(), 1, func(ctx context.Context, k Kernel) error { return ignoreNotExist(k.DeleteAddr(ctx, a)) })
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want.Sets)) {
		if old := stale[name]; len(old) > 0 {
			kind := defs[name].kind
			p.add("ipset", fmt.Sprintf("delete %d entries from %s: %s", len(old), name, abbrev(old)), len(old),
				func(ctx context.Context, k Kernel) error { return k.DeleteEntries(ctx, name, kind, old) })
		}
	}
	return p
}

// planVS plans one desired virtual server and its real servers.
func (in *planInput) planVS(p *Plan, key VSKey) {
	v := in.want.VirtualServers[key]
	c, exists := in.cur.VirtualServers[key]
	if !exists {
		p.add("ipvs", fmt.Sprintf("add virtual server %s %s timeout %d", key, v.Scheduler, v.Timeout), 1,
			func(ctx context.Context, k Kernel) error { return k.AddVirtualServer(ctx, v) })
		c = &VirtualServer{}
	} else if !v.sameConfig(c) {
		p.add("ipvs", fmt.Sprintf("update virtual server %s %s timeout %d", key, v.Scheduler, v.Timeout), 1,
			func(ctx context.Context, k Kernel) error { return k.UpdateVirtualServer(ctx, v) })
	}
	for _, d := range slices.SortedFunc(maps.Keys(v.Dests), netip.AddrPort.Compare) {
		w := v.Dests[d].Weight
		cd, ok := c.Dests[d]
		switch {
		case !ok:
			p.add("ipvs", fmt.Sprintf("add real server %s -> %s weight %d", key, d, w), 1,
				func(ctx context.Context, k Kernel) error { return k.AddDest(ctx, key, d, w) })
		case cd.Weight != w:
			p.add("ipvs", fmt.Sprintf("set real server %s -> %s weight %d", key, d, w), 1,
				func(ctx context.Context, k Kernel) error { return k.UpdateDest(ctx, key, d, w) })
		}
	}
	for _, d := range slices.SortedFunc(maps.Keys(c.Dests), netip.AddrPort.Compare) {
		if _, ok := v.Dests[d]; ok {
			continue
		}
		dk := drainKey{key, d}
		cd := c.Dests[d]
		since, draining := in.drainSince[dk]
		switch {
		case key.Proto != "TCP" || (cd.Weight == 0 && cd.ActiveConns == 0 && cd.InactiveConns == 0) ||
			(draining && in.now.Sub(since) >= in.opts.DrainTimeout):
			p.add("ipvs", fmt.Sprintf("delete real server %s -> %s", key, d), 1,
				func(ctx context.Context, k Kernel) error { return ignoreNotExist(k.DeleteDest(ctx, key, d)) })
		case cd.Weight != 0:
			p.draining[dk] = true
			p.add("ipvs", fmt.Sprintf("drain real server %s -> %s (weight 0)", key, d), 1,
				func(ctx context.Context, k Kernel) error { return k.UpdateDest(ctx, key, d, 0) })
		default:
			p.draining[dk] = true
		}
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
