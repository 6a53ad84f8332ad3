package iptables

import (
	"fmt"
	"hash/maphash"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kproxy/kproxy/proxier"
)

// largeClusterEndpoints is kube-proxy's threshold above which the
// per-endpoint comments are left out (fewer bytes to write and to keep).
const largeClusterEndpoints = 1000

// defaultBucketMin is the number of nat KUBE-SERVICES entries from which
// they are spread over dispatch buckets (see dispatch.go). Below it the
// chain is flat, as kube-proxy writes it.
const defaultBucketMin = 1000

// renderer turns snapshots into chains. It keeps each Service's rendering
// between syncs and renders again only the Services whose *Service changed
// (or all of them when a setting they depend on changed). It is pure: no
// I/O. It is not safe for concurrent use.
type renderer struct {
	opts        Options // normalized
	randomFully bool
	masqMark    string // "0x4000", as iptables-save prints it
	fullMask    string // the address mask of "recent" matches
	probs       probabilities
	bucketMin   int
	seed        maphash.Seed // of the chain sums, as the Proxier's

	// Settings every cached rendering depends on.
	node  proxier.NodeInfo
	large bool
	cache map[types.NamespacedName]*svcRender
	// buckets are the bucket chains of the last render that used them
	// (all nil when it did not), reused for buckets nothing changed in.
	buckets [256]*body
}

// rendered is one render's output.
type rendered struct {
	// shared are the chains shared by all Services, static ones included,
	// by table.
	shared map[string]map[string]*body
	// services are all Services' renderings, in name order.
	services []*svcRender
	// changed were rendered in this run; gone are the renderings they
	// replaced and those of removed Services.
	changed, gone []*svcRender
	rules         map[string]int
	noLocal       map[string]int
}

func newRenderer(opts Options, randomFully bool, seed maphash.Seed) *renderer {
	full := "255.255.255.255"
	if opts.Family == proxier.IPv6 {
		full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	}
	return &renderer{
		opts:        opts,
		randomFully: randomFully,
		masqMark:    "0x" + strconv.FormatUint(1<<uint(opts.MasqueradeBit), 16),
		fullMask:    full,
		bucketMin:   opts.bucketMin,
		seed:        seed,
		cache:       map[types.NamespacedName]*svcRender{},
	}
}

// Render returns exactly the iptables-restore input a full sync of snap
// writes into a namespace with none of kproxy's chains (without the jump
// rules in built-in chains, which are ensured one by one). It does no I/O;
// it assumes MASQUERADE --random-fully is available, as on every kernel
// and iptables of the last decade.
func Render(snap *proxier.Snapshot, opts Options) (string, error) {
	opts, err := opts.normalized()
	if err != nil {
		return "", err
	}
	if snap == nil || snap.Family != opts.Family {
		return "", fmt.Errorf("iptables: render: snapshot is not of family %s", opts.Family)
	}
	seed := maphash.MakeSeed()
	r := newRenderer(opts, true, seed)
	res := r.render(snap)
	tx := newTxn(res, true, nil, seed, nil)
	if err := tx.Err(); err != nil {
		return "", fmt.Errorf("iptables: render: %w", err)
	}
	return tx.String(), nil
}

// render renders snap, reusing the cached rendering of every Service
// whose *Service is unchanged.
func (r *renderer) render(snap *proxier.Snapshot) *rendered {
	out := &rendered{rules: map[string]int{}, noLocal: map[string]int{}}
	large := countEndpoints(snap) > largeClusterEndpoints
	if large != r.large || !reflect.DeepEqual(snap.Node, r.node) {
		for _, s := range r.cache {
			out.gone = append(out.gone, s)
		}
		r.cache = map[types.NamespacedName]*svcRender{}
		r.large, r.node = large, snap.Node
	}
	for name, s := range r.cache {
		if _, ok := snap.Services[name]; !ok {
			out.gone = append(out.gone, s)
			delete(r.cache, name)
		}
	}
	names := snap.SortedNames()
	out.services = make([]*svcRender, 0, len(names))
	for _, name := range names {
		svc := snap.Services[name]
		s := r.cache[name]
		if s == nil || s.svc != svc {
			if s != nil {
				out.gone = append(out.gone, s)
			}
			s = r.renderService(snap, svc)
			r.cache[name] = s
			out.changed = append(out.changed, s)
		}
		out.services = append(out.services, s)
		out.rules[tableNAT] += s.rules
		out.noLocal["internal"] += s.noLocalInternal
		out.noLocal["external"] += s.noLocalExternal
	}
	out.shared = r.sharedChains(snap, out.services, dirtyBuckets(out))
	for table, chains := range out.shared {
		for _, b := range chains {
			out.rules[table] += b.rules
		}
	}
	return out
}

// withTextFor renders again the Services of res whose own chains differ
// from cur but whose text was dropped once the kernel held it (see
// svcRender.dropText): a full sync over a kernel that lost or changed
// them must write them.
func (r *renderer) withTextFor(snap *proxier.Snapshot, res *rendered, cur chainSums) {
	for i, s := range res.services {
		if s.hasText() || s.matches(cur[tableNAT]) {
			continue
		}
		fresh := r.renderService(snap, s.svc)
		r.cache[s.svc.Name] = fresh
		res.services[i] = fresh
	}
}

// countEndpoints counts the endpoint chains snap needs.
func countEndpoints(snap *proxier.Snapshot) int {
	n := 0
	for _, svc := range snap.Services {
		for i := range svc.Ports {
			n += len(svc.Ports[i].Usable.AllReachable)
		}
	}
	return n
}

// sharedChains assembles the chains every Service writes into, from the
// Services' renderings in name order, plus the static ones.
func (r *renderer) sharedChains(snap *proxier.Snapshot, services []*svcRender, dirty *[256]bool) map[string]map[string]*body {
	out := map[string]map[string]*body{tableFilter: {}, tableNAT: {}}
	for _, chain := range []string{chainServices, chainExternalServices, chainForward, chainNodePorts, chainProxyFirewall} {
		out[tableFilter][chain] = &body{}
	}
	for _, chain := range []string{chainServices, chainNodePorts, chainPostrouting, chainMarkMasq} {
		out[tableNAT][chain] = &body{}
	}
	r.writeStatic(out)
	dispatchLines := 0
	for _, service := range services {
		dispatchLines += len(service.disp)
		for _, line := range service.shared {
			out[line.table][line.chain].addRest(line.chain, line.rest)
		}
	}
	nat := out[tableNAT]
	if dispatchLines >= r.bucketMin {
		r.writeBuckets(nat, services, dirty)
	} else {
		r.buckets = [256]*body{}
		for _, service := range services {
			for _, line := range service.disp {
				nat[chainServices].addRest(chainServices, line.rest)
			}
		}
	}
	r.writeNodePortsJump(snap, nat[chainServices])
	r.writeForward(out[tableFilter][chainForward])
	return out
}
