package ipvs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kproxy/kproxy/proxier"
)

// svcOpt changes a test Service.
type svcOpt func(*v1.Service)

// makeService returns a ClusterIP Service with one TCP port per "port[/proto]"
// ("80", "53/UDP"); the port is named <proto><port> and targets port+8000.
func makeService(ns, name, clusterIP string, ports []string, opts ...svcOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}},
	}
	for _, p := range ports {
		num, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "TCP"
		}
		n, _ := strconv.Atoi(num)
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: strings.ToLower(proto) + num, Port: int32(n), Protocol: v1.Protocol(proto),
			TargetPort: intstr.FromInt32(int32(n + 8000))})
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func nodePort(ports ...int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].NodePort = ports[i]
		}
	}
}

func loadBalancer(ip string, ranges ...string) svcOpt {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = ranges
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ip}}
	}
}

func externalIPs(ips ...string) svcOpt { return func(s *v1.Service) { s.Spec.ExternalIPs = ips } }

func etpLocal(hc int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = hc
	}
}

func itpLocal() svcOpt {
	return func(s *v1.Service) {
		p := v1.ServiceInternalTrafficPolicyLocal
		s.Spec.InternalTrafficPolicy = &p
	}
}

func affinity(seconds int32) svcOpt {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(seconds)}}
	}
}

// ep is an endpoint "ip@node" with optional ",terminating" / ",notready".
type ep string

// makeSlice returns the EndpointSlice of svc with the given endpoints,
// serving every port of the Service at port+8000.
func makeSlice(svc *v1.Service, eps ...ep) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-abc",
			Labels: map[string]string{discovery.LabelServiceName: svc.Name}},
		AddressType: discovery.AddressTypeIPv4,
	}
	for _, p := range svc.Spec.Ports {
		es.Ports = append(es.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.TargetPort.IntVal), Protocol: ptr.To(p.Protocol)})
	}
	for _, e := range eps {
		spec, flags, _ := strings.Cut(string(e), ",")
		ip, node, _ := strings.Cut(spec, "@")
		d := discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(node)}
		switch flags {
		case "terminating":
			d.Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
		case "notready":
			d.Conditions = discovery.EndpointConditions{Ready: ptr.To(false)}
		}
		es.Endpoints = append(es.Endpoints, d)
	}
	return es
}

func makeNode(name string, ips ...string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	return n
}

// world is a tracker fed with API objects, for tests.
type world struct {
	t *proxier.Tracker
}

func newWorld(node *v1.Node) *world {
	w := &world{t: proxier.NewTracker(node.Name, []proxier.Family{proxier.IPv4},
		func(kind, name string, err error) { panic(fmt.Sprintf("invalid %s %s: %v", kind, name, err)) }, time.Unix(0, 0))}
	w.t.OnNode(node)
	return w
}

// set adds or replaces a Service and its slice; eps nil deletes the slice.
func (w *world) set(svc *v1.Service, eps ...ep) {
	w.t.OnService(nil, svc)
	w.t.OnEndpointSlice(nil, makeSlice(svc, eps...))
}

func (w *world) remove(svc *v1.Service) {
	w.t.OnService(svc, nil)
	w.t.OnEndpointSlice(makeSlice(svc), nil)
}

func (w *world) checkout() proxier.Checkout { return w.t.Checkout() }

// scenario is a node with one of each kind of Service.
func scenario() *world {
	w := newWorld(makeNode("node1", "198.51.100.11"))
	w.set(makeService("default", "web", "10.96.0.10", []string{"80", "443"}),
		"10.244.1.10@node1", "10.244.2.10@node2")
	w.set(makeService("default", "dns", "10.96.0.53", []string{"53/UDP", "53"}),
		"10.244.1.11@node1", "10.244.2.11@node2,terminating")
	w.set(makeService("default", "sticky", "10.96.0.20", []string{"80"}, affinity(60)),
		"10.244.1.10@node1", "10.244.2.10@node2")
	w.set(makeService("default", "empty", "10.96.0.30", []string{"80"}))
	w.set(makeService("default", "np", "10.96.0.40", []string{"80"}, nodePort(30080)),
		"10.244.2.12@node2")
	w.set(makeService("default", "np-local", "10.96.0.41", []string{"80"}, nodePort(30081), etpLocal(0)),
		"10.244.2.12@node2")
	w.set(makeService("default", "lb", "10.96.0.50", []string{"80"}, nodePort(30082),
		loadBalancer("203.0.113.5", "192.0.2.0/24"), externalIPs("203.0.113.9"), etpLocal(32000)),
		"10.244.1.12@node1", "10.244.2.12@node2")
	w.set(makeService("kube-system", "internal-local", "10.96.0.60", []string{"80"}, itpLocal()),
		"10.244.2.13@node2")
	return w
}

// nodeFake is a fake kernel of a node whose eth0 has 198.51.100.11.
func nodeFake() *Fake {
	k := NewFake()
	k.NodeAddrs = []netip.Addr{netip.MustParseAddr("198.51.100.11")}
	return k
}
