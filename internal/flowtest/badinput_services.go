package flowtest

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// addPort appends a Service port.
func addPort(name string, proto v1.Protocol, port, nodePort int32) ServiceOpt {
	return func(s *v1.Service) { s.Spec.Ports = append(s.Spec.Ports, Port(name, proto, port, nodePort)) }
}

func withType(t v1.ServiceType) ServiceOpt { return func(s *v1.Service) { s.Spec.Type = t } }

// notProxied is the case "port of svc (from the API object) is not proxied".
func notProxied(svc, port string) Case {
	return Case{Name: svc + " port " + port + " is not proxied", Source: FromLocalPod, Service: svc, Port: port, Dest: ToClusterIP, Want: NotProxied}
}

// badServices are malformed Services: each bad part is dropped and
// reported, the rest of the Service works.
func badServices(c *corpus) {
	c.simple("svc-clusterip-garbage", true, false, false, func(s *v1.Service) { s.Spec.ClusterIP = "10.96.1"; s.Spec.ClusterIPs = []string{"10.96.1"} })
	c.simple("svc-clusterip-wrong-family", true, false, false, func(s *v1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00:96::99", []string{"fd00:96::99"} // IPFamilies says IPv4
	})
	c.simple("svc-clusterip-cidr", true, false, false, func(s *v1.Service) { s.Spec.ClusterIPs = []string{s.Spec.ClusterIP + "/32"} })
	// Refused by a single-stack IPv4 apiserver ("IPv6: not configured on
	// this cluster"); a dual-stack cluster accepts it.
	c.simple("svc-ipv6-only", false, false, false, func(s *v1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies = "fd00:96::10", []string{"fd00:96::10"}, []v1.IPFamily{v1.IPv6Protocol}
	})
	for _, bad := range []struct {
		name string
		port v1.ServicePort
	}{
		{"svc-port-zero", Port("bad", tcp, 0, 0)},
		{"svc-port-65536", Port("bad", tcp, 65536, 0)},
		{"svc-port-negative", Port("bad", tcp, -1, 0)},
		{"svc-port-huge", Port("bad", tcp, 1<<30, 0)},
		{"svc-nodeport-65536", Port("bad", tcp, 81, 65536)},
		{"svc-nodeport-negative", Port("bad", tcp, 81, -5)},
		{"svc-proto-icmp", Port("bad", "ICMP", 81, 0)},
		{"svc-proto-lowercase", Port("bad", "tcp", 81, 0)},
		{"svc-proto-garbage", Port("bad", "\x00\"; -j ACCEPT", 81, 0)},
		{"svc-duplicate-name", Port("p", udp, 81, 0)},
		{"svc-duplicate-port", Port("bad", tcp, 80, 0)},
	} {
		s := c.svc(bad.name, withType(v1.ServiceTypeNodePort), func(s *v1.Service) {
			s.Spec.Ports[0].NodePort = c.np()
			s.Spec.Ports = append(s.Spec.Ports, bad.port)
		})
		e := BadInput{Scenario: Scenario{Name: bad.name, Services: []*v1.Service{s}, Slices: []*discovery.EndpointSlice{c.slice(bad.name)},
			Cases: []Case{reaches(bad.name, "p"), {Name: bad.name + " NodePort works", Source: FromOutside, Service: bad.name, Port: "p", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{goodEndpoint}, Masquerade: true}}},
			Reports: []string{"Service default/" + bad.name}, Programmed: []string{bad.name}}
		if bad.name != "svc-duplicate-name" && bad.name != "svc-duplicate-port" {
			e.Cases = append(e.Cases, notProxied(bad.name, "bad"))
		}
		c.add(e)
	}
	c.simple("svc-externalip-garbage", true, true, false, ExternalIPs("203.0.113.300", "203.0.113.7"))
	c.simple("svc-externalip-other-family", false, true, true, ExternalIPs("2001:db8::7"))
	c.simple("svc-lb-ingress-garbage", true, true, false, withType(v1.ServiceTypeLoadBalancer), func(s *v1.Service) {
		s.Spec.Ports[0].NodePort = c.np()
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "not-an-ip"}, {Hostname: "lb.example"}}
	})
	c.simple("svc-source-range-garbage", true, true, false, LoadBalancer(fmt.Sprintf("10.96.250.%d", c.next)), SourceRanges("10.0.0.0/33", "garbage"),
		func(s *v1.Service) { s.Spec.Ports[0].NodePort = c.np() })
	// A Service listing only invalid ranges must fail closed on its LB IP.
	closed := c.out[len(c.out)-1]
	closed.Cases = append(closed.Cases, Case{Name: "LB IP with only invalid source ranges is closed", Source: FromOutside,
		Service: closed.Name, Port: "p", Dest: ToLoadBalancerIP, Want: Drop})
	c.out[len(c.out)-1] = closed
	c.simple("svc-source-range-spaces", false, true, false, LoadBalancer(fmt.Sprintf("10.96.250.%d", c.next)), SourceRanges(" "+ClientIP+"/32 "),
		func(s *v1.Service) { s.Spec.Ports[0].NodePort = c.np() })
	c.simple("svc-affinity-zero", true, true, false, Affinity(0))
	c.simple("svc-affinity-too-long", true, true, false, Affinity(86401))
	c.simple("svc-affinity-negative", true, true, false, Affinity(-1))
	c.simple("svc-healthcheck-nodeport-65536", true, true, false, LoadBalancer(), ExternalLocal, func(s *v1.Service) {
		s.Spec.Ports[0].NodePort = c.np()
		s.Spec.HealthCheckNodePort = 65536
	})
	c.simple("svc-healthcheck-nodeport-negative", true, true, false, LoadBalancer(), ExternalLocal, func(s *v1.Service) {
		s.Spec.Ports[0].NodePort = c.np()
		s.Spec.HealthCheckNodePort = -1
	})
	c.simple("svc-port-name-quote", true, false, false, func(s *v1.Service) { s.Spec.Ports[0].Name = `p"x` })
	c.simple("svc-name-newline", false, false, false, func(s *v1.Service) { s.Name = "svc-name\nnewline" })
	c.out[len(c.out)-1].Reports = []string{"Service default/svc-name\nnewline"}
	c.simple("svc-namespace-too-long", false, false, false, func(s *v1.Service) { s.Namespace = strings.Repeat("n", 300) })
	c.out[len(c.out)-1].Reports = []string{"Service " + strings.Repeat("n", 300) + "/svc-namespace-too-long"}
}

// extremeServices are valid but unusual Services: nothing to report,
// everything programmed (or silently skipped).
func extremeServices(c *corpus) {
	for _, skip := range []struct {
		name string
		opt  ServiceOpt
	}{
		{"svc-externalname", func(s *v1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP, s.Spec.ClusterIPs = v1.ServiceTypeExternalName, "example.org", "", nil
			s.Spec.IPFamilies = nil // the apiserver forbids them on ExternalName Services
		}},
		{"svc-headless", func(s *v1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = v1.ClusterIPNone, []string{v1.ClusterIPNone}
		}},
		{"svc-no-clusterip", func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }},
		{"svc-other-proxy", func(s *v1.Service) { s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "other"} }},
		{"svc-no-ports", func(s *v1.Service) { s.Spec.Ports = nil }},
	} {
		// The apiserver allocates a ClusterIP when none is given and
		// requires ports on a ClusterIP Service.
		c.simple(skip.name, false, false, skip.name != "svc-no-clusterip" && skip.name != "svc-no-ports", skip.opt)
	}
	c.simple("svc-tcp-and-udp-same-port", false, true, true, addPort("dns", udp, 80, 0))
	c.simple("svc-unknown-type", false, true, false, withType("Weird"))
	// Refused by the apiserver: "may only be set for externally-accessible services".
	c.simple("svc-local-policy-on-clusterip", false, true, false, ExternalLocal)
	c.simple("svc-nodeport-without-nodeport", false, true, false, NodePortType)
	c.simple("svc-many-externalips", false, true, true, func(s *v1.Service) {
		for i := range 100 {
			s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, fmt.Sprintf("203.0.113.%d", i+1))
		}
	})
	c.simple("svc-ipv4-mapped-clusterip", false, true, false, func(s *v1.Service) { s.Spec.ClusterIPs = []string{"::ffff:" + s.Spec.ClusterIP} })

	// 1,000 ports in one Service, each with a NodePort.
	ports := make([]v1.ServicePort, 1000)
	slicePorts := make([]discovery.EndpointPort, 1000)
	for i := range ports {
		ports[i] = Port(fmt.Sprintf("p%d", i), tcp, int32(10000+i), 0)
		slicePorts[i] = SlicePort(fmt.Sprintf("p%d", i), tcp, 8080)
	}
	big := NewService("svc-1000-ports", c.ip(), ports)
	c.add(BadInput{Scenario: Scenario{Name: "svc-1000-ports", Services: []*v1.Service{big},
		Slices: []*discovery.EndpointSlice{NewSlice("svc-1000-ports-1", "svc-1000-ports", slicePorts, EP{IP: remote0, Node: OtherNode})},
		Cases:  []Case{reaches("svc-1000-ports", "p0"), reaches("svc-1000-ports", "p999")}},
		Programmed: []string{"svc-1000-ports"}, APIAccepts: true})

	// Names at the length limits: namespace and name 63, port name 15.
	ns, name := strings.Repeat("n", 63), strings.Repeat("s", 63)
	long := c.svc(name, func(s *v1.Service) { s.Namespace = ns; s.Spec.Ports[0].Name = strings.Repeat("x", 15) })
	sl := NewSlice(strings.Repeat("e", 253), name, []discovery.EndpointPort{SlicePort(strings.Repeat("x", 15), tcp, 8080)}, EP{IP: remote0, Node: OtherNode})
	sl.Namespace = ns
	c.add(BadInput{Scenario: Scenario{Name: "svc-names-at-limit", Services: []*v1.Service{long}, Slices: []*discovery.EndpointSlice{sl},
		Cases: []Case{reaches(name, strings.Repeat("x", 15))}}, Programmed: []string{ns + "/" + name}, APIAccepts: true})

	// Two Services claiming the same ClusterIP and the same NodePort (the
	// apiserver's allocators prevent it; a proxy must still not fail).
	a := c.svc("svc-conflict-a", NodePortType)
	b := NewService("svc-conflict-b", a.Spec.ClusterIP, []v1.ServicePort{Port("p", tcp, 80, 0)}, NodePortType)
	a.Spec.Ports[0].NodePort = c.np()
	b.Spec.Ports[0].NodePort = a.Spec.Ports[0].NodePort
	c.add(BadInput{Scenario: Scenario{Name: "svc-conflicting-ip-and-nodeport", Services: []*v1.Service{a, b},
		Slices: []*discovery.EndpointSlice{c.slice("svc-conflict-a"), c.slice("svc-conflict-b")},
		Cases:  []Case{reaches("svc-conflict-a", "p")}}, Programmed: []string{"svc-conflict-a", "svc-conflict-b"}})

}
