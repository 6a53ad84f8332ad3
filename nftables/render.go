package nftables

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// renderer writes a snapshot's Services (all of them, or the changed
// ones) into a transaction. It is pure: no I/O. One renderer serves one
// sync.
type renderer struct {
	opts Options // normalized
	tx   ops
	node *proxier.NodeInfo
	// serviceCIDRs: the ranges ClusterIPs come from (snapshot's).
	serviceCIDRs []netip.Prefix

	ipX         string // "ip" or "ip6", as in "ip daddr"
	addrType    string // "ipv4_addr" or "ipv6_addr"
	notLoopback string // "ip daddr != 127.0.0.0/8"
	masqMark    string // "0x004000", as kube-proxy formats it
	masqRule    string // "mark set mark or 0x004000"
	// ifLocal and ifNotLocal match pod traffic and other traffic by the
	// local detector ("" when it detects nothing).
	ifLocal, ifNotLocal string

	nodePorts nodePortPlan

	shared map[string]bool // shared regular chains ensured
	// cur collects what the Service being rendered owns and claims; old
	// is what the table holds (the Service's objects, or all of them in a
	// full sync), for telling which affinity sets change their timeout.
	cur *serviceObjects
	old kernelObjects
	// existing, in a full sync, are the service chains the table may hold:
	// renderFull flushes them all before writing any Service.
	existing map[string]bool
	// noTable, in a full sync, tells there is no table yet: nothing to
	// flush, and nothing to delete (the add-then-delete of what must be
	// gone costs nft milliseconds per set).
	noTable bool
	// direct, on a full render, are the elements written so far: a
	// claimed element goes into the transaction if its key is new, after
	// every chain, grouped by set and map (see mergingNFT).
	direct   map[elemKey]*knftables.Element
	directBy map[string][]*knftables.Element // by set or map
	// conflicts are the elements left out because an earlier Service (in
	// name order), or an earlier port of the same Service, has the key:
	// nft rejects a second value for a key.
	conflicts []string
}

func newRenderer(opts Options, tx ops, snap *proxier.Snapshot) *renderer {
	r := &renderer{
		opts: opts, tx: tx, node: &snap.Node, serviceCIDRs: snap.ServiceCIDRs,
		ipX: "ip", addrType: "ipv4_addr", notLoopback: "ip daddr != 127.0.0.0/8",
		masqMark: fmt.Sprintf("%#08x", 1<<uint(opts.MasqueradeBit)),
		shared:   map[string]bool{},
	}
	if opts.Family == proxier.IPv6 {
		r.ipX, r.addrType, r.notLoopback = "ip6", "ipv6_addr", "ip6 daddr != ::1"
	}
	r.masqRule = "mark set mark or " + r.masqMark
	r.ifLocal, r.ifNotLocal = r.localMatches(opts.LocalDetector)
	r.nodePorts = planNodePorts(proxier.NodePortDests(opts.Family, opts.NodePortAddresses, snap.Node.PrimaryIP()))
	return r
}

// localMatches turns the local detector into nftables matches, as
// kube-proxy writes them.
func (r *renderer) localMatches(d proxier.LocalDetector) (local, notLocal string) {
	if cidr, ok := d.CIDR(); ok {
		return knftables.Concat(r.ipX, "saddr", cidr.String()), knftables.Concat(r.ipX, "saddr !=", cidr.String())
	}
	name, prefix := d.Interface()
	if name == "" {
		return "", ""
	}
	if prefix {
		name += "*"
	}
	return "iifname " + name, "iifname != " + name
}

// renderFull writes the whole snapshot: the static part (which flushes
// the shared sets and maps), then every Service in name order, each
// element as soon as it is claimed unless an earlier one has its key
// (that earlier claim is the winner the elementTable picks too). It
// returns what each Service owns and the elements written.
func (r *renderer) renderFull(snap *proxier.Snapshot, recreateBase bool) (map[types.NamespacedName]*serviceObjects, *elementTable) {
	r.writeStatic(recreateBase)
	r.flushExisting()
	names := snap.SortedNames()
	byService := make(map[types.NamespacedName]*serviceObjects, len(names))
	elems := newElementTable()
	r.direct, r.directBy = elems.written, map[string][]*knftables.Element{}
	var keys []elemKey
	for _, name := range names {
		rendered := r.renderService(snap.Services[name])
		byService[name] = rendered
		elems.add(name, rendered.elements)
		for _, element := range rendered.elements {
			keys = append(keys, keyOf(element))
		}
	}
	r.writeDirect()
	r.direct, r.directBy = nil, nil
	r.conflicts = append(r.conflicts, elems.conflicts(uniqueKeys(keys))...)
	return byService, elems
}

// flushExisting adds, then flushes, every chain in r.existing. Adding
// first keeps a chain someone else deleted from failing the transaction;
// flushing them all before any Service is written leaves the Services'
// chain and rule adds one long run (see groupChainRules), where a flush
// per chain would cut it into short ones.
func (r *renderer) flushExisting() {
	names := slices.Sorted(maps.Keys(r.existing))
	for _, c := range names {
		r.tx.Add(&knftables.Chain{Name: c})
	}
	for _, c := range names {
		r.tx.Flush(&knftables.Chain{Name: c})
	}
}

// renderService writes one Service's chains and collects its elements.
func (r *renderer) renderService(svc *proxier.Service) *serviceObjects {
	r.cur = newServiceObjects()
	for i := range svc.Ports {
		r.writePort(&svc.Ports[i])
	}
	objects := r.cur
	r.cur, objects.claimed = nil, nil // claimed only serves the rendering
	return objects
}

// element claims an element of a shared set or map for the current
// Service. Within a Service the first value for a key wins, as across
// Services (see elementTable); a different later one is a conflict.
func (r *renderer) element(e *knftables.Element) {
	k := keyOf(e)
	v := values(e)
	if old, ok := r.cur.claimed[k]; ok {
		if old != v {
			r.conflicts = append(r.conflicts, k.container+" "+k.key+": "+v+" (kept "+old+")")
		}
		return
	}
	r.cur.claimed[k] = v
	r.cur.elements = append(r.cur.elements, e)
	if _, ok := r.direct[k]; r.direct != nil && !ok {
		r.direct[k] = e
		r.directBy[k.container] = append(r.directBy[k.container], e)
	}
}

// writeDirect adds a full render's elements, set by set in name order.
// They come after every chain, which their verdicts may name.
func (r *renderer) writeDirect() {
	for _, container := range slices.Sorted(maps.Keys(r.directBy)) {
		for _, e := range r.directBy[container] {
			r.tx.Add(e)
		}
	}
}

// ensureChain adds a per-service chain once (unless the full sync added
// it already: existing), and records it as the current Service's. In a
// partial sync it flushes the chain if the table may hold it (old); a
// full sync has flushed those already (flushExisting). A chain kproxy
// flushed as stale and has not deleted yet is empty.
func (r *renderer) ensureChain(name string) {
	if r.cur.chains[name] {
		return
	}
	r.cur.chains[name] = true
	if !r.existing[name] { // a full sync added (and flushed) it already
		r.tx.Add(&knftables.Chain{Name: name})
	}
	if r.old.chains[name] {
		r.tx.Flush(&knftables.Chain{Name: name})
	}
}

// Render returns the transaction a first full sync of snap sends into an
// empty table, as the `nft -f` input mergingNFT sends. It does no I/O.
func Render(snap *proxier.Snapshot, opts Options) (string, error) {
	opts, err := opts.normalized()
	if err != nil {
		return "", err
	}
	if snap == nil || snap.Family != opts.Family {
		return "", fmt.Errorf("nftables: render: snapshot is not of family %s", opts.Family)
	}
	fam, _ := nftFamily(opts.Family)
	w := newTextWriter(knftables.NewFake(fam, tableName), fam, minBlockLines)
	r := newRenderer(opts, w, snap)
	r.noTable = true
	r.renderFull(snap, true)
	return w.text()
}

// prefixString is a CIDR as nft prints it: a host prefix as the address.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}
