package userspace

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kproxy/kproxy/proxier"
)

// backend is one endpoint as the data path sees it. A listener keeps the
// same *backend while the endpoint stays in its set, so that health and
// drain state survive syncs.
type backend struct {
	addr netip.AddrPort
	// heldUntil (unix ns): after a failed dial the endpoint is tried only
	// after the others until then.
	heldUntil atomic.Int64
	// removedAt (unix ns) is set when the endpoint leaves the listener's
	// set; its established connections drain from then on.
	removedAt atomic.Int64
}

func (b *backend) held(now int64) bool { return b.heldUntil.Load() > now }

// balancer is one listener's endpoint choice for one version of its
// service port. It is replaced, not mutated, when the port changes.
type balancer struct {
	cluster, local []*backend
	// useLocal: the listener's policy (ITP for internal, ETP for external)
	// is Local.
	useLocal bool
	external bool
	// affinity is the ClientIP affinity timeout, 0 for none.
	affinity time.Duration
	// rr are the round-robin counters of the cluster and local sets.
	rrCluster, rrLocal atomic.Uint32
}

// sourceClassifier tells whether a client is a pod or the node itself
// (these short-circuit externalTrafficPolicy=Local).
type sourceClassifier struct {
	cidrs   []netip.Prefix
	nodeIPs []netip.Addr
	// podsByInterface: pods are detected by the interface they come in
	// on, which an accepted socket does not show. The rules decide then:
	// without a local endpoint only pods and the node are redirected to an
	// externalTrafficPolicy=Local listener, so whoever arrives is one.
	podsByInterface bool
}

// newSourceClassifier classifies by the detector's CIDR, if it has one.
func newSourceClassifier(d proxier.LocalDetector, nodeIPs []netip.Addr) *sourceClassifier {
	c := &sourceClassifier{nodeIPs: nodeIPs}
	if cidr, ok := d.CIDR(); ok {
		c.cidrs = []netip.Prefix{cidr}
	} else {
		c.podsByInterface = d.IsImplemented()
	}
	return c
}

func (c *sourceClassifier) inCluster(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, ip := range c.nodeIPs {
		if ip == a {
			return true
		}
	}
	for _, p := range c.cidrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// candidates returns the endpoint set a client may use and its counter.
func (b *balancer) candidates(client netip.Addr, src *sourceClassifier) ([]*backend, *atomic.Uint32) {
	if !b.useLocal {
		return b.cluster, &b.rrCluster
	}
	if b.external && (src.inCluster(client) || src.podsByInterface && len(b.local) == 0) {
		// kube-proxy short-circuits pod and node traffic to external
		// destinations of an ETP=Local Service to the Cluster endpoints
		// (Port.Usable.Cluster is set for every externally reachable
		// port). As upstream, there is no short-circuit when Cluster is
		// empty (e.g. topology hints exclude every endpoint).
		if len(b.cluster) > 0 {
			return b.cluster, &b.rrCluster
		}
	}
	return b.local, &b.rrLocal
}

// order fills buf with the endpoints to try, best first: the affinity
// endpoint if any, then round robin from the counter, endpoints recently
// failed last. It returns nil when there is no endpoint.
func (b *balancer) order(buf []*backend, client netip.Addr, src *sourceClassifier, aff *affinityTable, now time.Time) []*backend {
	set, rr := b.candidates(client, src)
	n := len(set)
	if n == 0 {
		return nil
	}
	affIdx := -1
	if b.affinity > 0 {
		if addr, ok := aff.get(client, now); ok {
			for i, be := range set {
				if be.addr == addr {
					affIdx = i
					break
				}
			}
		}
	}
	out := buf[:0]
	var start int
	if affIdx >= 0 {
		// The affinity endpoint first, even if it failed lately: the client
		// is bound to it while it is in the set.
		out = append(out, set[affIdx])
		start = affIdx + 1
	} else {
		start = int((rr.Add(1) - 1) % uint32(n))
	}
	ns := now.UnixNano()
	for pass := 0; pass < 2; pass++ {
		for k := 0; k < n; k++ {
			i := (start + k) % n
			if i != affIdx && set[i].held(ns) == (pass == 1) {
				out = append(out, set[i])
			}
		}
	}
	return out
}

// newBalancer builds the balancer of a listener spec, reusing the
// listener's backends (and adding new ones to the map).
func newBalancer(s *listenerSpec, backends map[netip.AddrPort]*backend) *balancer {
	u := &s.Src.Usable
	b := &balancer{
		external: s.Key.Class == external,
		affinity: time.Duration(s.Src.AffinityTimeout) * time.Second,
	}
	if b.external {
		b.useLocal = s.Src.ExternalPolicyLocal
	} else {
		b.useLocal = s.Src.InternalPolicyLocal
	}
	get := func(e proxier.Endpoint) *backend {
		ap := e.AddrPort()
		be := backends[ap]
		if be == nil {
			be = &backend{addr: ap}
			backends[ap] = be
		}
		return be
	}
	for _, e := range u.Cluster {
		b.cluster = append(b.cluster, get(e))
	}
	for _, e := range u.Local {
		b.local = append(b.local, get(e))
	}
	return b
}

// clusterOrLocal is the set pods and the node use on an ETP=Local external
// destination (see balancer.candidates).
func clusterOrLocal(u *proxier.UsableEndpoints) []proxier.Endpoint {
	if len(u.Cluster) > 0 {
		return u.Cluster
	}
	return u.Local
}

// affinityTable remembers, per client IP, the endpoint it last used.
type affinityTable struct {
	mu sync.Mutex
	m  map[netip.Addr]affinityEntry
}

type affinityEntry struct {
	addr    netip.AddrPort
	expires time.Time
}

func (t *affinityTable) get(client netip.Addr, now time.Time) (netip.AddrPort, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[client]
	if !ok || !now.Before(e.expires) {
		return netip.AddrPort{}, false
	}
	return e.addr, true
}

func (t *affinityTable) put(client netip.Addr, addr netip.AddrPort, expires time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[netip.Addr]affinityEntry{}
	}
	t.m[client] = affinityEntry{addr: addr, expires: expires}
}

// prune drops expired entries.
func (t *affinityTable) prune(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.m {
		if !now.Before(e.expires) {
			delete(t.m, k)
		}
	}
}
