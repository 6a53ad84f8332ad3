package iptables

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// randomWorld makes random Services of every kind and random changes to
// them, from a seed. Addresses are drawn from small pools so that Services
// share external IPs and dispatch buckets.
type randomWorld struct {
	rng      *rand.Rand
	tr       *proxier.Tracker
	services map[string]*v1.Service
	slices   map[string]*discovery.EndpointSlice
	next     int
	version  int
}

func newRandomWorld(seed uint64) *randomWorld {
	return &randomWorld{rng: rand.New(rand.NewPCG(seed, 7)), tr: newTracker(),
		services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}, version: 100}
}

func (w *randomWorld) ip(prefix string, n int) string {
	return fmt.Sprintf("%s.%d", prefix, 1+w.rng.IntN(n))
}

func (w *randomWorld) newService(name string) *v1.Service {
	ports := []v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 0)}
	if w.rng.IntN(3) == 0 {
		ports = append(ports, flowtest.Port("dns", v1.ProtocolUDP, 53, 0))
	}
	var opts []flowtest.ServiceOpt
	switch w.rng.IntN(5) {
	case 1:
		opts = append(opts, flowtest.NodePortType)
		for i := range ports {
			ports[i].NodePort = int32(30000 + w.rng.IntN(2000))
		}
	case 2:
		opts = append(opts, flowtest.LoadBalancer(w.ip("192.0.2", 8)))
		if w.rng.IntN(2) == 0 {
			opts = append(opts, flowtest.SourceRanges("198.51.100.0/24"))
		}
	case 3:
		opts = append(opts, flowtest.ExternalIPs(w.ip("203.0.113", 4)))
	}
	if w.rng.IntN(4) == 0 {
		opts = append(opts, flowtest.Affinity(int32(10+w.rng.IntN(100))))
	}
	if w.rng.IntN(5) == 0 {
		opts = append(opts, flowtest.InternalLocal)
	}
	if w.rng.IntN(4) == 0 {
		opts = append(opts, flowtest.ExternalLocal)
	}
	// A few /24s and last bytes, so that buckets hold several Services.
	cip := fmt.Sprintf("10.96.%d.%d", w.rng.IntN(4), 1+w.rng.IntN(40))
	for _, s := range w.services {
		if s.Spec.ClusterIP == cip {
			cip = fmt.Sprintf("10.96.%d.%d", 10+w.next, 1+w.rng.IntN(250))
		}
	}
	svc := flowtest.NewService(name, cip, ports, opts...)
	if svc.Spec.Type == v1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) == 0 {
		svc.Spec.ExternalTrafficPolicy = "" // only valid for external Services
	}
	return svc
}

func (w *randomWorld) newSlice(svc *v1.Service) *discovery.EndpointSlice {
	var eps []flowtest.EP
	for range w.rng.IntN(4) {
		node := flowtest.OtherNode
		if w.rng.IntN(2) == 0 {
			node = flowtest.ThisNode
		}
		eps = append(eps, flowtest.EP{IP: w.ip("10.244."+fmt.Sprint(1+w.rng.IntN(2)), 200), Node: node,
			NotReady: w.rng.IntN(8) == 0, Terminating: w.rng.IntN(8) == 0})
	}
	ports := []discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)}
	if len(svc.Spec.Ports) > 1 {
		ports = append(ports, flowtest.SlicePort("dns", v1.ProtocolUDP, 5353))
	}
	sl := flowtest.NewSlice(svc.Name+"-1", svc.Name, ports, eps...)
	w.version++
	sl.ResourceVersion = fmt.Sprint(w.version)
	return sl
}

func (w *randomWorld) pick() string {
	names := make([]string, 0, len(w.services))
	for n := range w.services {
		names = append(names, n)
	}
	if len(names) == 0 {
		return ""
	}
	slicesSort(names)
	return names[w.rng.IntN(len(names))]
}

// step applies one random change and describes it.
func (w *randomWorld) step() string {
	name := w.pick()
	switch op := w.rng.IntN(10); {
	case op < 3 || name == "":
		w.next++
		name = fmt.Sprintf("svc-%d", w.next)
		svc := w.newService(name)
		sl := w.newSlice(svc)
		w.tr.OnService(nil, svc)
		w.tr.OnEndpointSlice(nil, sl)
		w.services[name], w.slices[name] = svc, sl
		return "add " + name
	case op < 5:
		w.tr.OnService(w.services[name], nil)
		w.tr.OnEndpointSlice(w.slices[name], nil)
		delete(w.services, name)
		delete(w.slices, name)
		return "remove " + name
	case op < 8:
		sl := w.newSlice(w.services[name])
		w.tr.OnEndpointSlice(w.slices[name], sl)
		w.slices[name] = sl
		return "endpoints of " + name
	default:
		old := w.services[name]
		svc := w.newService(name)
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = old.Spec.ClusterIP, old.Spec.ClusterIPs
		w.version++
		svc.ResourceVersion = fmt.Sprint(w.version)
		w.tr.OnService(old, svc)
		w.services[name] = svc
		return "reshape " + name
	}
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// randomOptions put the bucket threshold where random sequences cross it
// both ways.
func randomOptions() Options {
	o := flowOptions()
	o.bucketMin = 12
	return o
}

// TestRandomPartialEqualsFull replays seeded random change sequences with
// partial syncs against the Fake and checks after every step that the
// state equals a fresh full sync of the same snapshot, including when the
// dispatch switches between the flat and the bucketed layout.
func TestRandomPartialEqualsFull(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 4; seed++ {
		w := newRandomWorld(seed)
		fake := NewFake()
		opts := randomOptions()
		opts.Kernel = fake
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		buckets := map[bool]int{}
		for i := range 150 {
			what := w.step()
			co := w.tr.Checkout()
			snap := co.Snapshots[proxier.IPv4]
			if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: co.Changed[proxier.IPv4], Full: i == 0}); err != nil {
				t.Fatalf("seed %d step %d (%s): %v", seed, i, what, err)
			}
			ref := NewFake()
			ropts := randomOptions()
			ropts.Kernel = ref
			rp, _ := New(ropts)
			if _, err := rp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
				t.Fatal(err)
			}
			if got, want := dump(t, fake), dump(t, ref); got != want {
				t.Fatalf("seed %d step %d (%s): partial state differs from a full sync:\n--- partial\n%s\n--- full\n%s", seed, i, what, got, want)
			}
			ok, _ := fake.ChainExists(ctx, tableNAT, level1Chain(0))
			buckets[ok]++
		}
		if buckets[true] == 0 || buckets[false] == 0 {
			t.Errorf("seed %d: layouts seen %v, want both", seed, buckets)
		}
	}
}

// TestKernelRandomPartialEqualsFull is the same against the real
// iptables-restore: after every partial sync, iptables-save of the node
// equals that of a fresh full sync in another namespace.
func TestKernelRandomPartialEqualsFull(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	ctx := context.Background()
	newNS := func(name string) (*Proxier, Kernel) {
		k, err := NewExecKernel(ExecConfig{Family: proxier.IPv4, Netns: testrig.NewNetns(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		opts := randomOptions()
		opts.Kernel = k
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		return p, k
	}
	p, k := newNS("rnd")
	w := newRandomWorld(42)
	for i := range 40 {
		what := w.step()
		co := w.tr.Checkout()
		snap := co.Snapshots[proxier.IPv4]
		if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Changed: co.Changed[proxier.IPv4], Full: i == 0}); err != nil {
			t.Fatalf("step %d (%s): %v", i, what, err)
		}
		if i%4 != 3 {
			continue
		}
		rp, rk := newNS("rndref")
		if _, err := rp.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
			t.Fatal(err)
		}
		if got, want := ourRules(t, k), ourRules(t, rk); got != want {
			t.Fatalf("step %d (%s): partial state differs from a full sync:\n--- partial\n%s--- full\n%s", i, what, got, want)
		}
	}
}
