package iptables

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fuzzGen turns fuzz bytes into Services and EndpointSlices whose every
// field may be valid, extreme or garbage. Running out of bytes yields
// zeros, so every input decodes.
type fuzzGen struct {
	data []byte
	i    int
}

func (g *fuzzGen) byte() byte {
	if g.i >= len(g.data) {
		return 0
	}
	b := g.data[g.i]
	g.i++
	return b
}

func (g *fuzzGen) n(max int) int { return int(g.byte()) % max }

func (g *fuzzGen) pick(opts ...string) string { return opts[g.n(len(opts))] }

func (g *fuzzGen) bool() bool { return g.byte()&1 == 1 }

// port is mostly a small set of real ports, sometimes anything.
func (g *fuzzGen) port() int32 {
	switch g.n(8) {
	case 0:
		return 0
	case 1:
		return 65536
	case 2:
		return -1
	case 3:
		return int32(g.byte())<<8 | int32(g.byte())
	}
	return int32(80 + g.n(4))
}

func (g *fuzzGen) ip() string {
	switch g.n(10) {
	case 0:
		return g.pick("", "garbage", "10.96.0.300", "fd00::1", "::ffff:10.96.0.9", "0.0.0.0", "127.0.0.1", "224.0.0.1", "10.96.0.1/32")
	case 1:
		return fmt.Sprintf("fd00:96::%x", g.byte())
	case 2, 3:
		return fmt.Sprintf("10.244.%d.%d", g.n(3), g.byte())
	}
	return fmt.Sprintf("10.96.%d.%d", g.n(4), g.byte())
}

func (g *fuzzGen) name() string {
	return g.pick("a", "b", "c", "web", strings.Repeat("n", 63), `q"x`, "new\nline", "", "UPPER", "a.b")
}

func (g *fuzzGen) proto() v1.Protocol {
	return v1.Protocol(g.pick("TCP", "TCP", "UDP", "SCTP", "", "ICMP", "tcp"))
}

func (g *fuzzGen) services() []*v1.Service {
	var out []*v1.Service
	for range 1 + g.n(4) {
		s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: g.pick("default", "default", "other", `bad"ns`), Name: g.name(), ResourceVersion: "1"}}
		s.Spec.Type = v1.ServiceType(g.pick("ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Weird"))
		s.Spec.ClusterIP = g.ip()
		s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
		if g.bool() {
			s.Spec.ClusterIPs = append(s.Spec.ClusterIPs, g.ip())
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPFamily(g.pick("IPv6", "IPv4", ""))}
		}
		for range g.n(4) {
			s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: g.pick("", "p", "q", "dns", `x"y`), Protocol: g.proto(), Port: g.port(), NodePort: 30000 + int32(g.n(5))})
		}
		for range g.n(3) {
			s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, g.ip())
		}
		for range g.n(3) {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: g.ip()})
		}
		for range g.n(3) {
			s.Spec.LoadBalancerSourceRanges = append(s.Spec.LoadBalancerSourceRanges, g.pick("198.51.100.0/24", "198.51.100.100/32", "10.0.0.0/33", "garbage", "2001:db8::/64", " 0.0.0.0/0 "))
		}
		if g.bool() {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = g.port() + 32000
		}
		if g.bool() {
			p := v1.ServiceInternalTrafficPolicyLocal
			s.Spec.InternalTrafficPolicy = &p
		}
		if g.bool() {
			t := int32(g.byte()) - 10
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &t}}
		}
		out = append(out, s)
	}
	return out
}

func (g *fuzzGen) slices(svcs []*v1.Service) []*discovery.EndpointSlice {
	var out []*discovery.EndpointSlice
	for si, svc := range svcs {
		for k := range g.n(3) {
			sl := &discovery.EndpointSlice{
				ObjectMeta:  metav1.ObjectMeta{Namespace: svc.Namespace, Name: fmt.Sprintf("s%d-%d", si, k), ResourceVersion: "1", Labels: map[string]string{discovery.LabelServiceName: svc.Name}},
				AddressType: discovery.AddressType(g.pick("IPv4", "IPv4", "IPv4", "IPv6", "FQDN", "")),
			}
			for range g.n(4) {
				name, proto, port := g.pick("", "p", "q", "dns"), g.proto(), g.port()+8000
				sl.Ports = append(sl.Ports, discovery.EndpointPort{Name: &name, Protocol: &proto, Port: &port})
			}
			for range g.n(5) {
				ready, serving, term := g.bool(), g.bool(), g.bool()
				node := g.pick("node1", "node2", "")
				ep := discovery.Endpoint{Addresses: []string{g.ip()}, NodeName: &node,
					Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &term}}
				if g.n(4) == 0 {
					ep.Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: g.pick("z1", "z2")}}, ForNodes: []discovery.ForNode{{Name: g.pick("node1", "node2")}}}
				}
				sl.Endpoints = append(sl.Endpoints, ep)
			}
			out = append(out, sl)
		}
	}
	return out
}
