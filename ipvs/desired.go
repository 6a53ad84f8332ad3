package ipvs

import (
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/proxier"
)

// desired is the desired State kept per Service, so that a partial sync
// rebuilds only the Services that changed: s is the union of the
// contributions, with reference counts for what Services can share
// (addresses, set entries) and for virtual servers (two Services on one
// address:port are a conflict that only a full rebuild resolves exactly
// like Build: the later name wins).
type desired struct {
	s             *State
	opts          *Options
	fam           proxier.Family
	node          proxier.NodeInfo
	nodePortAddrs []netip.Addr

	contrib   map[types.NamespacedName]*State
	vsRefs    map[VSKey]int
	addrRefs  map[netip.Addr]int
	entryRefs map[setEntryKey]int
}

type setEntryKey struct{ set, entry string }

// scope lists what a partial update touched: the plan diffs only these.
type scope struct {
	vs      map[VSKey]bool
	addrs   map[netip.Addr]bool
	entries map[string]map[string]bool
}

func newScope() *scope {
	return &scope{vs: map[VSKey]bool{}, addrs: map[netip.Addr]bool{}, entries: map[string]map[string]bool{}}
}

func (sc *scope) cover(c *State) {
	for k := range c.VirtualServers {
		sc.vs[k] = true
	}
	for a := range c.Addrs {
		sc.addrs[a] = true
	}
	for n, es := range c.Sets {
		if sc.entries[n] == nil {
			sc.entries[n] = map[string]bool{}
		}
		for e := range es {
			sc.entries[n][e] = true
		}
	}
}

// newDesired builds the whole desired State of snap.
func newDesired(snap *proxier.Snapshot, opts *Options, nodePortAddrs []netip.Addr) *desired {
	d := &desired{s: NewState(), opts: opts, fam: snap.Family, node: snap.Node, nodePortAddrs: nodePortAddrs,
		contrib: map[types.NamespacedName]*State{}, vsRefs: map[VSKey]int{}, addrRefs: map[netip.Addr]int{},
		entryRefs: map[setEntryKey]int{}}
	for _, d2 := range allSets {
		d.s.Sets[d2.name(snap.Family)] = map[string]bool{} // the rules use every set
	}
	d.s.Rules = renderRules(opts, snap.Family)
	for _, name := range snap.SortedNames() {
		c := buildService(snap.Services[name], d.fam, opts, &d.node, nodePortAddrs)
		d.contrib[name] = c
		d.add(c)
	}
	return d
}

// sameInputs reports whether d was built with this node and these
// NodePort addresses (otherwise every Service must be rebuilt).
func (d *desired) sameInputs(snap *proxier.Snapshot, nodePortAddrs []netip.Addr) bool {
	return d.fam == snap.Family && slices.Equal(d.nodePortAddrs, nodePortAddrs) && slices.Equal(d.node.IPs, snap.Node.IPs)
}

func (d *desired) add(c *State) {
	for k, v := range c.VirtualServers {
		d.vsRefs[k]++
		d.s.VirtualServers[k] = v
	}
	for a := range c.Addrs {
		d.addrRefs[a]++
		d.s.Addrs[a] = true
	}
	for n, es := range c.Sets {
		for e := range es {
			d.entryRefs[setEntryKey{n, e}]++
			d.s.Sets[n][e] = true
		}
	}
}

func (d *desired) remove(c *State) {
	for k := range c.VirtualServers {
		if d.vsRefs[k]--; d.vsRefs[k] <= 0 {
			delete(d.vsRefs, k)
			delete(d.s.VirtualServers, k)
		}
	}
	for a := range c.Addrs {
		if d.addrRefs[a]--; d.addrRefs[a] <= 0 {
			delete(d.addrRefs, a)
			delete(d.s.Addrs, a)
		}
	}
	for n, es := range c.Sets {
		for e := range es {
			k := setEntryKey{n, e}
			if d.entryRefs[k]--; d.entryRefs[k] <= 0 {
				delete(d.entryRefs, k)
				delete(d.s.Sets[n], e)
			}
		}
	}
}

// update rebuilds the changed Services and returns what changed. It
// returns ok false, changing nothing, when a changed Service shares a
// virtual server with another one: the caller then rebuilds everything.
func (d *desired) update(snap *proxier.Snapshot, changed proxier.NameSet) (sc *scope, ok bool) {
	next := map[types.NamespacedName]*State{}
	refs := map[VSKey]int{}
	for name := range changed {
		var c *State
		if svc := snap.Services[name]; svc != nil {
			c = buildService(svc, d.fam, d.opts, &d.node, d.nodePortAddrs)
		}
		next[name] = c
		if old := d.contrib[name]; old != nil {
			for k := range old.VirtualServers {
				if _, seen := refs[k]; !seen {
					refs[k] = d.vsRefs[k]
				}
				refs[k]--
			}
		}
		if c != nil {
			for k := range c.VirtualServers {
				if _, seen := refs[k]; !seen {
					refs[k] = d.vsRefs[k]
				}
				refs[k]++
			}
		}
	}
	for k, n := range refs {
		if n > 1 || d.vsRefs[k] > 1 {
			return nil, false
		}
	}
	sc = newScope()
	for _, name := range slices.SortedFunc(maps.Keys(next), proxier.CompareNames) {
		if old := d.contrib[name]; old != nil {
			sc.cover(old)
			d.remove(old)
			delete(d.contrib, name)
		}
		if c := next[name]; c != nil {
			sc.cover(c)
			d.add(c)
			d.contrib[name] = c
		}
	}
	return sc, true
}
