package nftables

import (
	"fmt"
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// renderer writes one full sync of a snapshot into a transaction. It is
// pure: no I/O. One renderer serves one sync.
type renderer struct {
	opts Options // normalized
	tx   *knftables.Transaction
	node *proxier.NodeInfo

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
	// chains and affinitySets are the per-service objects this sync
	// wants; any other one found in the kernel is stale.
	chains, affinitySets map[string]bool
	// added holds the value of every element written, by set or map and
	// key: a ClusterIP has one element per port, a local endpoint one
	// hairpin element per Service, and two Services may claim one key.
	added map[string]string
	// conflicts are the elements left out because an earlier Service (in
	// name order) has the key: nft rejects a second value for a key.
	conflicts []string
	noLocal   map[string]int
}

func newRenderer(opts Options, tx *knftables.Transaction, snap *proxier.Snapshot) *renderer {
	r := &renderer{
		opts: opts, tx: tx, node: &snap.Node,
		ipX: "ip", addrType: "ipv4_addr", notLoopback: "ip daddr != 127.0.0.0/8",
		masqMark: fmt.Sprintf("%#08x", 1<<uint(opts.MasqueradeBit)),
		shared:   map[string]bool{}, chains: map[string]bool{}, affinitySets: map[string]bool{},
		added: map[string]string{}, noLocal: map[string]int{"internal": 0, "external": 0},
	}
	if opts.Family == proxier.IPv6 {
		r.ipX, r.addrType, r.notLoopback = "ip6", "ipv6_addr", "ip6 daddr != ::1"
	}
	r.masqRule = "mark set mark or " + r.masqMark
	r.ifLocal, r.ifNotLocal = r.localMatches(opts.LocalDetector)
	r.nodePorts = planNodePorts(proxier.NodePortDests(opts.Family, opts.NodePortAddresses, nodeIP(snap)))
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

// render writes the whole snapshot: the static part, then every
// Service in name order.
func (r *renderer) render(snap *proxier.Snapshot, recreateBase bool) {
	r.writeStatic(recreateBase)
	for _, name := range snap.SortedNames() {
		svc := snap.Services[name]
		for i := range svc.Ports {
			r.writePort(&svc.Ports[i])
		}
	}
}

// element adds an element to a shared set or map once. The first value
// written for a key wins, as the first matching rule does in the other
// modes; a different later value is recorded as a conflict.
func (r *renderer) element(e *knftables.Element) {
	k := e.Set + e.Map + " " + strings.Join(e.Key, " . ")
	v := strings.Join(e.Value, " ")
	if old, ok := r.added[k]; ok {
		if old != v {
			r.conflicts = append(r.conflicts, k+": "+v+" (kept "+old+")")
		}
		return
	}
	r.added[k] = v
	r.tx.Add(e)
}

// ensureChain adds and flushes a per-service chain once, and records it
// as wanted.
func (r *renderer) ensureChain(name string) {
	if r.chains[name] {
		return
	}
	r.chains[name] = true
	r.tx.Add(&knftables.Chain{Name: name})
	r.tx.Flush(&knftables.Chain{Name: name})
}

// Render returns the transaction a first full sync of snap sends, as
// `nft -f` input. It does no I/O.
func Render(snap *proxier.Snapshot, opts Options) (string, error) {
	opts, err := opts.normalized()
	if err != nil {
		return "", err
	}
	if snap == nil || snap.Family != opts.Family {
		return "", fmt.Errorf("nftables: render: snapshot is not of family %s", opts.Family)
	}
	fam, _ := nftFamily(opts.Family)
	tx := knftables.NewFake(fam, tableName).NewTransaction()
	newRenderer(opts, tx, snap).render(snap, true)
	return tx.String(), nil
}

// nodeIP is the node's primary IP of this family, if known.
func nodeIP(snap *proxier.Snapshot) (ip netip.Addr) {
	if len(snap.Node.IPs) > 0 {
		return snap.Node.IPs[0]
	}
	return ip
}

// prefixString is a CIDR as nft prints it: a host prefix as the address.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}
