package parity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The node both proxies run as, the other node endpoints may be on, and
// their zones.
const (
	thisNode  = "node1"
	otherNode = "node2"
	thisZone  = "zone-a"
	otherZone = "zone-b"
)

// world is one seed's random Services and EndpointSlices in their own
// Kubernetes namespace. It knows the objects it created, so that a batch of
// changes can pick among them.
type world struct {
	ns     string
	rng    *rand.Rand
	client kubernetes.Interface
	// svcs are the Services as the apiserver returned them (with their
	// allocated ClusterIPs and NodePorts); slices by name.
	svcs   map[string]*v1.Service
	slices map[string]*discovery.EndpointSlice
	next   int // suffix of the next new Service's name
	log    []string
}

func newWorld(seed uint64, client kubernetes.Interface) *world {
	return &world{
		ns:     fmt.Sprintf("parity-%d", seed),
		rng:    rand.New(rand.NewPCG(seed, seed^0x5eed)),
		client: client,
		svcs:   map[string]*v1.Service{},
		slices: map[string]*discovery.EndpointSlice{},
	}
}

func (w *world) logf(format string, a ...any) { w.log = append(w.log, fmt.Sprintf(format, a...)) }

func (w *world) chance(p float64) bool { return w.rng.Float64() < p }

func pick[T any](w *world, xs ...T) T { return xs[w.rng.IntN(len(xs))] }

// populate creates the namespace and n random Services with their slices.
func (w *world) populate(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	_, err := w.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		w.addService(ctx, t)
	}
}

// services returns the live Services, for the deviations.
func (w *world) services() []*v1.Service {
	out := make([]*v1.Service, 0, len(w.svcs))
	for _, s := range w.svcs {
		out = append(out, s)
	}
	return out
}

// addService creates one random Service, its load balancer status and
// its slices.
func (w *world) addService(ctx context.Context, t *testing.T) {
	t.Helper()
	name := fmt.Sprintf("s%d", w.next)
	w.next++
	s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name}}
	kind := pick(w, "ClusterIP", "ClusterIP", "NodePort", "LoadBalancer", "LoadBalancer", "ExternalName", "headless")
	switch kind {
	case "ExternalName":
		s.Spec.Type, s.Spec.ExternalName = v1.ServiceTypeExternalName, "example.com"
	case "headless":
		s.Spec.ClusterIP = v1.ClusterIPNone
	default:
		s.Spec.Type = v1.ServiceType(kind)
		w.setFamilies(s)
	}
	s.Spec.Ports = w.ports()
	w.options(s)
	created, err := w.client.CoreV1().Services(w.ns).Create(ctx, s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Service %s/%s: %v\n%+v", w.ns, name, err, s.Spec)
	}
	w.logf("create Service %s: %s", name, describe(created))
	w.svcs[name] = w.setStatus(ctx, t, created)
	for _, f := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
		if w.hasFamily(created, f) || w.chance(0.1) {
			for k := range w.rng.IntN(3) {
				w.applySlice(ctx, t, w.newSlice(created, f, k))
			}
		}
	}
}

// setFamilies makes a Service IPv4, IPv6 or dual stack (either order).
func (w *world) setFamilies(s *v1.Service) {
	switch w.rng.IntN(4) {
	case 0:
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol}
	case 1:
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
	case 2:
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
		s.Spec.IPFamilyPolicy = ptr.To(v1.IPFamilyPolicyRequireDualStack)
	default:
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}
		s.Spec.IPFamilyPolicy = ptr.To(v1.IPFamilyPolicyRequireDualStack)
	}
}

// ports returns 1 to 3 ports of random protocols; a lone port may be
// unnamed; a targetPort may be named (the slices then carry its number).
func (w *world) ports() []v1.ServicePort {
	n := 1 + w.rng.IntN(3)
	var out []v1.ServicePort
	for j := range n {
		p := v1.ServicePort{
			Name:     fmt.Sprintf("p%d", j),
			Protocol: pick(w, v1.ProtocolTCP, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP),
			Port:     int32(80 + j),
		}
		if n == 1 && w.chance(0.5) {
			p.Name = ""
		}
		if w.chance(0.3) {
			p.TargetPort = intstr.FromString(fmt.Sprintf("t%d", j))
		} else {
			p.TargetPort = intstr.FromInt32(int32(8080 + j))
		}
		out = append(out, p)
	}
	return out
}

// options sets everything about a Service that may change later: traffic
// policies, affinity, externalIPs, source ranges, traffic distribution and
// the labels that decide whether kube-proxy proxies it at all.
func (w *world) options(s *v1.Service) {
	s.Labels = nil
	switch r := w.rng.IntN(20); {
	case r == 0:
		s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "other-proxy"}
	case r < 3:
		s.Labels = map[string]string{"service.kubernetes.io/headless": ""}
	}
	if s.Spec.ClusterIP == v1.ClusterIPNone || s.Spec.Type == v1.ServiceTypeExternalName {
		return
	}
	s.Spec.SessionAffinity, s.Spec.SessionAffinityConfig = v1.ServiceAffinityNone, nil
	if w.chance(0.3) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		if w.chance(0.5) {
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(pick[int32](w, 60, 3600))}}
		}
	}
	s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyCluster)
	if w.chance(0.25) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}
	s.Spec.ExternalIPs = nil
	if w.chance(0.3) {
		for _, f := range s.Spec.IPFamilies {
			if f == v1.IPv4Protocol {
				s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, fmt.Sprintf("192.0.2.%d", 1+w.rng.IntN(20)))
			} else {
				s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, fmt.Sprintf("2001:db8:2::%x", 1+w.rng.IntN(20)))
			}
		}
	}
	external := s.Spec.Type == v1.ServiceTypeNodePort || s.Spec.Type == v1.ServiceTypeLoadBalancer || len(s.Spec.ExternalIPs) > 0
	s.Spec.ExternalTrafficPolicy = ""
	if external {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		if w.chance(0.4) {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}
	}
	s.Spec.TrafficDistribution = nil
	if w.chance(0.3) {
		s.Spec.TrafficDistribution = ptr.To(pick(w, v1.ServiceTrafficDistributionPreferClose,
			v1.ServiceTrafficDistributionPreferSameZone, v1.ServiceTrafficDistributionPreferSameNode))
	}
	s.Spec.LoadBalancerSourceRanges, s.Spec.AllocateLoadBalancerNodePorts = nil, nil
	if s.Spec.Type == v1.ServiceTypeLoadBalancer {
		if w.chance(0.2) {
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		}
		if w.chance(0.6) {
			s.Spec.LoadBalancerSourceRanges = pick(w,
				[]string{"203.0.113.0/24"},
				[]string{"10.1.0.0/16", "198.51.100.0/24"}, // holds the node's IP
				[]string{"2001:db8:9::/48"},
				[]string{"fd00:198:51:100::/64"}, // holds the node's IPv6
				[]string{"203.0.113.0/24", "2001:db8:9::/48"},
				[]string{"0.0.0.0/0"},
				[]string{"0.0.0.0/0", "2001:db8:9::/48"},
				[]string{"::/0", "203.0.113.0/24"},
				[]string{" 203.0.113.0/24 ", " 10.2.0.0/16"},
			)
		}
	}
}

// setStatus gives a LoadBalancer Service random ingress: VIP-mode IPs of
// its families (sometimes also of the other family), a Proxy-mode IP, a
// hostname.
func (w *world) setStatus(ctx context.Context, t *testing.T, s *v1.Service) *v1.Service {
	t.Helper()
	if s.Spec.Type != v1.ServiceTypeLoadBalancer {
		return s
	}
	var ing []v1.LoadBalancerIngress
	for _, f := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		if !slices.Contains(s.Spec.IPFamilies, f) && !w.chance(0.2) {
			continue
		}
		for range w.rng.IntN(3) {
			var ip string
			if f == v1.IPv4Protocol {
				ip = fmt.Sprintf("198.18.0.%d", 1+w.rng.IntN(30))
			} else {
				ip = fmt.Sprintf("2001:db8:18::%x", 1+w.rng.IntN(30))
			}
			in := v1.LoadBalancerIngress{IP: ip}
			switch w.rng.IntN(5) {
			case 0:
				in.IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
			case 1:
				in.IPMode = ptr.To(v1.LoadBalancerIPModeVIP)
			}
			ing = append(ing, in)
		}
	}
	if w.chance(0.2) {
		ing = append(ing, v1.LoadBalancerIngress{Hostname: "lb.example.com"})
	}
	if len(ing) == 0 {
		return s
	}
	s.Status.LoadBalancer.Ingress = ing
	got, err := w.client.CoreV1().Services(w.ns).UpdateStatus(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set status of Service %s: %v", s.Name, err)
	}
	w.logf("  status of %s: %s", s.Name, ingressString(ing))
	return got
}

func (w *world) hasFamily(s *v1.Service, at discovery.AddressType) bool {
	return slices.Contains(s.Spec.IPFamilies, v1.IPFamily(at))
}

// newSlice returns slice k of family at for Service s: the Service's ports
// (a named targetPort gets a number per slice, as with pods listening on
// different ports), sometimes one more or one fewer, and 0 to 4 endpoints
// in every condition, on this node, the other one or none, with zone and
// node hints; sometimes the headless or service-proxy-name label.
func (w *world) newSlice(s *v1.Service, at discovery.AddressType, k int) *discovery.EndpointSlice {
	fam := "v4"
	if at == discovery.AddressTypeIPv6 {
		fam = "v6"
	}
	es := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: w.ns, Name: fmt.Sprintf("%s-%s-%d", s.Name, fam, k),
			Labels: map[string]string{discovery.LabelServiceName: s.Name},
		},
		AddressType: at,
	}
	switch w.rng.IntN(12) {
	case 0:
		es.Labels["service.kubernetes.io/headless"] = ""
	case 1:
		es.Labels["service.kubernetes.io/service-proxy-name"] = "other-proxy"
	}
	for i, p := range s.Spec.Ports {
		if len(s.Spec.Ports) > 1 && w.chance(0.1) {
			continue
		}
		num := int32(8080 + i)
		if p.TargetPort.Type == intstr.String {
			num = int32(9000 + 10*i + w.rng.IntN(3))
		}
		es.Ports = append(es.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(num)})
	}
	if w.chance(0.1) {
		es.Ports = append(es.Ports, discovery.EndpointPort{Name: ptr.To("unknown"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](7000)})
	}
	for range w.rng.IntN(5) {
		es.Endpoints = append(es.Endpoints, w.endpoint(s, at))
	}
	return es
}

// endpoint returns an endpoint with an address not used by any other
// slice of the Service, or (sometimes) a copy of one that is, made so that
// kube-proxy's choice between the copies is defined: the same endpoint
// again, or one copy terminating and the other not.
func (w *world) endpoint(s *v1.Service, at discovery.AddressType) discovery.Endpoint {
	used := w.addressesOf(s.Name, at)
	// Only an address listed once may be copied: a third copy could make
	// two live copies that differ.
	count := map[string]int{}
	for _, e := range used {
		count[e.Addresses[0]]++
	}
	single := slices.DeleteFunc(slices.Clone(used), func(e discovery.Endpoint) bool { return count[e.Addresses[0]] > 1 })
	if len(single) > 0 && w.chance(0.2) {
		orig := single[w.rng.IntN(len(single))]
		dup := *orig.DeepCopy()
		if w.chance(0.5) {
			if isTerminating(orig) {
				dup.Conditions = discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}
			} else {
				dup.Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(w.chance(0.5)), Terminating: ptr.To(true)}
			}
			dup.NodeName = ptr.To(pick(w, thisNode, otherNode))
		}
		return dup
	}
	var addr string
	for {
		if at == discovery.AddressTypeIPv4 {
			addr = fmt.Sprintf("10.244.%d.%d", 1+w.rng.IntN(2), 5+w.rng.IntN(120))
		} else {
			addr = fmt.Sprintf("fd00:10:244:%d::%x", 1+w.rng.IntN(2), 5+w.rng.IntN(120))
		}
		if !slices.ContainsFunc(used, func(e discovery.Endpoint) bool { return e.Addresses[0] == addr }) {
			break
		}
	}
	ep := discovery.Endpoint{Addresses: []string{addr}}
	switch w.rng.IntN(7) {
	case 0: // nil conditions: ready, serving, not terminating
	case 1, 2:
		ep.Conditions = discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}
	case 3:
		ep.Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	case 4:
		ep.Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(true)}
	case 5:
		ep.Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(false)}
	default:
		ep.Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(false)}
	}
	switch w.rng.IntN(7) {
	case 0:
	case 1, 2, 3:
		ep.NodeName = ptr.To(thisNode)
	default:
		ep.NodeName = ptr.To(otherNode)
	}
	if w.chance(0.5) {
		ep.Zone = ptr.To(pick(w, thisZone, otherZone))
	}
	if w.chance(0.4) {
		ep.Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: pick(w, thisZone, otherZone)}}}
		if w.chance(0.5) {
			ep.Hints.ForNodes = []discovery.ForNode{{Name: pick(w, thisNode, otherNode)}}
		}
	}
	return ep
}

func isTerminating(e discovery.Endpoint) bool {
	return e.Conditions.Terminating != nil && *e.Conditions.Terminating
}

// addressesOf lists the endpoints of the Service's slices of family at.
func (w *world) addressesOf(svc string, at discovery.AddressType) []discovery.Endpoint {
	var out []discovery.Endpoint
	for _, n := range sortedKeys(w.slices) {
		es := w.slices[n]
		if es.Labels[discovery.LabelServiceName] == svc && es.AddressType == at {
			out = append(out, es.Endpoints...)
		}
	}
	return out
}

// applySlice creates or replaces a slice.
func (w *world) applySlice(ctx context.Context, t *testing.T, es *discovery.EndpointSlice) {
	t.Helper()
	c := w.client.DiscoveryV1().EndpointSlices(w.ns)
	var got *discovery.EndpointSlice
	var err error
	if cur, ok := w.slices[es.Name]; ok {
		es.ResourceVersion = cur.ResourceVersion
		got, err = c.Update(ctx, es, metav1.UpdateOptions{})
	} else {
		got, err = c.Create(ctx, es, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("apply EndpointSlice %s: %v", es.Name, err)
	}
	w.slices[es.Name] = got
	w.logf("  slice %s: %s", es.Name, sliceString(got))
}

// change applies n random changes: new, deleted and changed Services,
// changed, new and deleted slices.
func (w *world) change(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for range n {
		names := sortedKeys(w.svcs)
		if len(names) == 0 {
			w.addService(ctx, t)
			continue
		}
		s := w.svcs[pick(w, names...)]
		switch op := w.rng.IntN(10); {
		case op < 2:
			w.addService(ctx, t)
		case op < 3:
			w.deleteService(ctx, t, s.Name)
		case op < 6:
			w.updateService(ctx, t, s)
		default:
			w.changeSlices(ctx, t, s)
		}
	}
}

// updateService re-rolls a Service's options (and, for a proxied type, its
// type among ClusterIP, NodePort and LoadBalancer) and its status. A
// headless or ExternalName Service is replaced by a new one instead.
func (w *world) updateService(ctx context.Context, t *testing.T, s *v1.Service) {
	t.Helper()
	if s.Spec.ClusterIP == v1.ClusterIPNone || s.Spec.Type == v1.ServiceTypeExternalName {
		w.deleteService(ctx, t, s.Name)
		w.addService(ctx, t)
		return
	}
	u := s.DeepCopy()
	u.Spec.Type = pick(w, v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer)
	if u.Spec.Type == v1.ServiceTypeClusterIP {
		for i := range u.Spec.Ports {
			u.Spec.Ports[i].NodePort = 0
		}
	}
	u.Spec.HealthCheckNodePort = 0
	w.options(u)
	u.Status = v1.ServiceStatus{}
	got, err := w.client.CoreV1().Services(w.ns).Update(ctx, u, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update Service %s: %v\n%+v", s.Name, err, u.Spec)
	}
	w.logf("update Service %s: %s", s.Name, describe(got))
	if len(got.Status.LoadBalancer.Ingress) > 0 {
		got.Status = v1.ServiceStatus{}
		if got, err = w.client.CoreV1().Services(w.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("clear status of Service %s: %v", s.Name, err)
		}
	}
	w.svcs[s.Name] = w.setStatus(ctx, t, got)
}

// changeSlices replaces, adds or deletes one slice of a Service.
func (w *world) changeSlices(ctx context.Context, t *testing.T, s *v1.Service) {
	t.Helper()
	var mine []string
	for _, n := range sortedKeys(w.slices) {
		if w.slices[n].Labels[discovery.LabelServiceName] == s.Name {
			mine = append(mine, n)
		}
	}
	at := discovery.AddressTypeIPv4
	if len(s.Spec.IPFamilies) > 0 && s.Spec.IPFamilies[0] == v1.IPv6Protocol {
		at = discovery.AddressTypeIPv6
	}
	switch {
	case len(mine) == 0 || w.chance(0.3):
		w.applySlice(ctx, t, w.newSlice(s, at, 3+w.rng.IntN(3)))
	case w.chance(0.3):
		name := pick(w, mine...)
		if err := w.client.DiscoveryV1().EndpointSlices(w.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete EndpointSlice %s: %v", name, err)
		}
		delete(w.slices, name)
		w.logf("delete EndpointSlice %s", name)
	default:
		// New endpoints and conditions under the same name: the slice
		// controller's usual update.
		name := pick(w, mine...)
		old := w.slices[name]
		var k int
		fmt.Sscanf(name[strings.LastIndexByte(name, '-')+1:], "%d", &k)
		delete(w.slices, name) // so that its addresses may be picked again
		es := w.newSlice(s, old.AddressType, k)
		w.slices[name] = old
		w.applySlice(ctx, t, es)
	}
}

func (w *world) deleteService(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	err := w.client.CoreV1().Services(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete Service %s: %v", name, err)
	}
	delete(w.svcs, name)
	w.logf("delete Service %s (its slices stay)", name)
}

// clear deletes the namespace's Services and slices (the namespace itself
// stays: without a controller manager nothing would finish deleting it).
func (w *world) clear(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, n := range sortedKeys(w.svcs) {
		w.deleteService(ctx, t, n)
	}
	for _, n := range sortedKeys(w.slices) {
		if err := w.client.DiscoveryV1().EndpointSlices(w.ns).Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete EndpointSlice %s: %v", n, err)
		}
		delete(w.slices, n)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// describe is a one-line summary of a Service for the test log.
func describe(s *v1.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %v", s.Spec.Type, s.Spec.ClusterIPs, s.Labels)
	for _, p := range s.Spec.Ports {
		fmt.Fprintf(&b, " %s/%s:%d(np %d)", p.Name, p.Protocol, p.Port, p.NodePort)
	}
	if s.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
		b.WriteString(" affinity")
	}
	if s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal {
		b.WriteString(" itp=Local")
	}
	if s.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
		fmt.Fprintf(&b, " etp=Local hc=%d", s.Spec.HealthCheckNodePort)
	}
	if len(s.Spec.ExternalIPs) > 0 {
		fmt.Fprintf(&b, " externalIPs=%v", s.Spec.ExternalIPs)
	}
	if len(s.Spec.LoadBalancerSourceRanges) > 0 {
		fmt.Fprintf(&b, " ranges=%q", s.Spec.LoadBalancerSourceRanges)
	}
	if s.Spec.TrafficDistribution != nil {
		fmt.Fprintf(&b, " td=%s", *s.Spec.TrafficDistribution)
	}
	return b.String()
}

func ingressString(ing []v1.LoadBalancerIngress) string {
	var parts []string
	for _, in := range ing {
		p := in.IP + in.Hostname
		if in.IPMode != nil {
			p += "(" + string(*in.IPMode) + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func sliceString(es *discovery.EndpointSlice) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v ports", es.AddressType, es.Labels)
	for _, p := range es.Ports {
		fmt.Fprintf(&b, " %s/%s:%d", *p.Name, *p.Protocol, *p.Port)
	}
	for _, e := range es.Endpoints {
		c := e.Conditions
		fmt.Fprintf(&b, " %s[r=%s s=%s t=%s n=%s", e.Addresses[0], boolp(c.Ready), boolp(c.Serving), boolp(c.Terminating), strp(e.NodeName))
		if e.Hints != nil {
			fmt.Fprintf(&b, " hints=%v", e.Hints)
		}
		b.WriteString("]")
	}
	return b.String()
}

func boolp(p *bool) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func strp(p *string) string {
	if p == nil {
		return "nil"
	}
	return *p
}
