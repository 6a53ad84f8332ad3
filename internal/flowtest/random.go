package flowtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/proxier"
)

// RandomWorld makes random Services of every kind and random changes to
// them, from a seed, and feeds them to a tracker of this node. Addresses
// are drawn from small pools so that Services share external IPs, node
// ports and (in iptables mode) dispatch buckets. It knows nothing of any
// mode: every mode replays the same worlds.
type RandomWorld struct {
	rng      *rand.Rand
	tr       *proxier.Tracker
	services map[string]*v1.Service
	slices   map[string]*discovery.EndpointSlice
	next     int
	version  int
	podFirst int // endpoint hosts are podFirst…podFirst+podCount-1 of a node's /24
	podCount int
}

// NewRandomWorld is an empty world; the same seed makes the same changes.
func NewRandomWorld(seed uint64) *RandomWorld {
	tr := proxier.NewTracker(ThisNode, []proxier.Family{proxier.IPv4}, nil, time.Time{})
	tr.OnNode(Node())
	return &RandomWorld{rng: rand.New(rand.NewPCG(seed, 7)), tr: tr,
		services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}, version: 100,
		podFirst: 1, podCount: 200}
}

// UsePods draws endpoint addresses from hosts first…first+count-1 of each
// node's pod /24 (by default 1…200), so that a kernel test's real pods
// are the endpoints and a wrongly forwarded packet gets an answer.
func (w *RandomWorld) UsePods(first, count int) *RandomWorld {
	w.podFirst, w.podCount = first, count
	return w
}

// Checkout drains the tracker: the snapshot of the world so far and what
// changed since the last checkout.
func (w *RandomWorld) Checkout() proxier.Checkout { return w.tr.Checkout() }

// Step applies one random change and describes it.
func (w *RandomWorld) Step() string {
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

// pick is a random existing Service's name, "" when there is none.
func (w *RandomWorld) pick() string {
	if len(w.services) == 0 {
		return ""
	}
	// Sorted: map order would make the same seed pick differently.
	names := make([]string, 0, len(w.services))
	for n := range w.services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names[w.rng.IntN(len(names))]
}

func (w *RandomWorld) ip(prefix string, n int) string {
	return fmt.Sprintf("%s.%d", prefix, 1+w.rng.IntN(n))
}

func (w *RandomWorld) newService(name string) *v1.Service {
	ports := []v1.ServicePort{Port("http", v1.ProtocolTCP, 80, 0)}
	if w.rng.IntN(3) == 0 {
		ports = append(ports, Port("dns", v1.ProtocolUDP, 53, 0))
	}
	opts := w.exposure(ports)
	if w.rng.IntN(4) == 0 {
		opts = append(opts, Affinity(int32(10+w.rng.IntN(100))))
	}
	if w.rng.IntN(5) == 0 {
		opts = append(opts, InternalLocal)
	}
	if w.rng.IntN(4) == 0 {
		opts = append(opts, ExternalLocal)
	}
	svc := NewService(name, w.clusterIP(), ports, opts...)
	if svc.Spec.Type == v1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) == 0 {
		svc.Spec.ExternalTrafficPolicy = "" // only valid for external Services
	}
	return svc
}

// exposure makes the Service ClusterIP only, NodePort (setting the ports'
// node ports), LoadBalancer (sometimes with source ranges) or gives it an
// external IP.
func (w *RandomWorld) exposure(ports []v1.ServicePort) []ServiceOpt {
	switch w.rng.IntN(5) {
	case 1:
		for i := range ports {
			ports[i].NodePort = int32(30000 + w.rng.IntN(2000))
		}
		return []ServiceOpt{NodePortType}
	case 2:
		opts := []ServiceOpt{LoadBalancer(w.ip("192.0.2", 8))}
		if w.rng.IntN(2) == 0 {
			opts = append(opts, SourceRanges("198.51.100.0/24"))
		}
		return opts
	case 3:
		return []ServiceOpt{ExternalIPs(w.ip("203.0.113", 4))}
	}
	return nil
}

// clusterIP is a free ClusterIP from a few /24s and last bytes, so that
// iptables buckets hold several Services.
func (w *RandomWorld) clusterIP() string {
	cip := fmt.Sprintf("10.96.%d.%d", w.rng.IntN(4), 1+w.rng.IntN(40))
	for _, s := range w.services {
		if s.Spec.ClusterIP == cip {
			cip = fmt.Sprintf("10.96.%d.%d", 10+w.next, 1+w.rng.IntN(250))
		}
	}
	return cip
}

func (w *RandomWorld) newSlice(svc *v1.Service) *discovery.EndpointSlice {
	var eps []EP
	for range w.rng.IntN(4) {
		node := OtherNode
		if w.rng.IntN(2) == 0 {
			node = ThisNode
		}
		ip := fmt.Sprintf("10.244.%d.%d", 1+w.rng.IntN(2), w.podFirst+w.rng.IntN(w.podCount))
		eps = append(eps, EP{IP: ip, Node: node,
			NotReady: w.rng.IntN(8) == 0, Terminating: w.rng.IntN(8) == 0})
	}
	ports := []discovery.EndpointPort{SlicePort("http", v1.ProtocolTCP, 8080)}
	if len(svc.Spec.Ports) > 1 {
		ports = append(ports, SlicePort("dns", v1.ProtocolUDP, 5353))
	}
	sl := NewSlice(svc.Name+"-1", svc.Name, ports, eps...)
	w.version++
	sl.ResourceVersion = fmt.Sprint(w.version)
	return sl
}
