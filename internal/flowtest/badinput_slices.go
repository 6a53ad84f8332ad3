package flowtest

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// sliceEntry adds a Service with the usual port and the given slices.
func (c *corpus) sliceEntry(name string, reports []string, api bool, cases []Case, slices ...*discovery.EndpointSlice) {
	e := BadInput{Scenario: Scenario{Name: name, Services: []*v1.Service{c.svc(name)}, Slices: slices, Cases: cases},
		Reports: reports, Programmed: []string{name}, APIAccepts: api}
	c.add(e)
}

func withEndpoints(eps ...discovery.Endpoint) func(*discovery.EndpointSlice) {
	return func(s *discovery.EndpointSlice) { s.Endpoints = append(s.Endpoints, eps...) }
}

func addr(ip string) discovery.Endpoint { return discovery.Endpoint{Addresses: []string{ip}} }

// badSlices are malformed EndpointSlices: a bad endpoint or port is
// dropped and reported, a slice that cannot be used at all is reported
// once and ignored.
func badSlices(c *corpus) {
	report := func(name string) []string { return []string{"EndpointSlice default/" + name + "-1"} }
	works := func(name string) []Case { return []Case{reaches(name, "p")} }
	rejects := func(name string) []Case {
		return []Case{{Name: name + " has no endpoints", Source: FromLocalPod, Service: name, Port: "p", Dest: ToClusterIP, Want: Reject}}
	}
	for _, t := range []string{string(discovery.AddressTypeFQDN), "Weird", ""} {
		name := "es-addresstype-" + map[string]string{"FQDN": "fqdn", "Weird": "unknown", "": "empty"}[t]
		c.sliceEntry(name, report(name), t == "FQDN", rejects(name), c.slice(name, func(s *discovery.EndpointSlice) {
			s.AddressType = discovery.AddressType(t)
			if t == "FQDN" {
				s.Endpoints[0].Addresses = []string{"pod.example.org"}
			}
		}))
	}
	for _, bad := range []struct {
		name string
		ep   discovery.Endpoint
	}{
		{"es-ip-garbage", addr("10.244.1.999")},
		{"es-ip-wrong-family", addr("fd00:244::10")},
		{"es-ip-loopback", addr("127.0.0.1")},
		{"es-ip-unspecified", addr("0.0.0.0")},
		{"es-ip-multicast", addr("224.0.0.1")},
		{"es-ip-broadcast", addr("255.255.255.255")},
		{"es-ip-with-port", addr("10.244.2.11:8080")},
		{"es-ip-cidr", addr("10.244.2.11/32")},
		{"es-no-addresses", discovery.Endpoint{}},
	} {
		c.sliceEntry(bad.name, report(bad.name), false, works(bad.name), c.slice(bad.name, withEndpoints(bad.ep)))
	}
	for _, bad := range []struct {
		name string
		port discovery.EndpointPort
	}{
		{"es-port-zero", SlicePort("p", tcp, 0)},
		{"es-port-65536", SlicePort("p", tcp, 65536)},
		{"es-port-negative", SlicePort("p", tcp, -80)},
		{"es-port-unknown-protocol", SlicePort("p", "ICMP", 8080)},
	} {
		c.sliceEntry(bad.name, report(bad.name), false, rejects(bad.name), c.slice(bad.name, func(s *discovery.EndpointSlice) {
			s.Ports = []discovery.EndpointPort{bad.port}
		}))
	}
	c.sliceEntry("es-duplicate-port-name", report("es-duplicate-port-name"), false, works("es-duplicate-port-name"),
		c.slice("es-duplicate-port-name", func(s *discovery.EndpointSlice) { s.Ports = append(s.Ports, SlicePort("p", tcp, 9999)) }))
}

// extremeSlices are valid but unusual slices.
func extremeSlices(c *corpus) {
	works := func(name string, eps ...string) []Case { return []Case{reaches(name, "p", eps...)} }
	c.sliceEntry("es-nil-port", nil, true, works("es-nil-port"), c.slice("es-nil-port", func(s *discovery.EndpointSlice) {
		s.Ports = append(s.Ports, discovery.EndpointPort{Name: ptrTo("all")})
	}))
	c.sliceEntry("es-no-service-label", nil, true, []Case{{Name: "unowned slice gives no endpoints", Source: FromLocalPod,
		Service: "es-no-service-label", Port: "p", Dest: ToClusterIP, Want: Reject}},
		c.slice("es-no-service-label", func(s *discovery.EndpointSlice) { s.Labels = nil }))
	c.sliceEntry("es-nil-conditions", nil, true, works("es-nil-conditions"), c.slice("es-nil-conditions", func(s *discovery.EndpointSlice) {
		s.Endpoints[0].Conditions = discovery.EndpointConditions{}
		s.Endpoints[0].NodeName = nil
	}))
	c.sliceEntry("es-port-name-mismatch", nil, true, []Case{{Name: "slice port of another name gives no endpoints", Source: FromLocalPod,
		Service: "es-port-name-mismatch", Port: "p", Dest: ToClusterIP, Want: Reject}},
		c.slice("es-port-name-mismatch", func(s *discovery.EndpointSlice) { s.Ports[0].Name = ptrTo("other") }))
	c.sliceEntry("es-protocol-mismatch", nil, true, []Case{{Name: "slice port of another protocol gives no endpoints", Source: FromLocalPod,
		Service: "es-protocol-mismatch", Port: "p", Dest: ToClusterIP, Want: Reject}},
		c.slice("es-protocol-mismatch", func(s *discovery.EndpointSlice) { s.Ports[0].Protocol = ptrTo(udp) }))
	c.sliceEntry("es-duplicate-endpoint", nil, true, works("es-duplicate-endpoint"),
		c.slice("es-duplicate-endpoint", withEndpoints(addr(remote0), addr(remote0))))
	c.sliceEntry("es-several-addresses", nil, true, works("es-several-addresses"),
		c.slice("es-several-addresses", func(s *discovery.EndpointSlice) { s.Endpoints[0].Addresses = []string{remote0, remote1, remote2} }))
	c.sliceEntry("es-ipv4-mapped", nil, false, works("es-ipv4-mapped"),
		c.slice("es-ipv4-mapped", func(s *discovery.EndpointSlice) { s.Endpoints[0].Addresses = []string{"::ffff:" + remote0} }))
	c.sliceEntry("es-hints-other-zone", nil, true, works("es-hints-other-zone"), c.slice("es-hints-other-zone", func(s *discovery.EndpointSlice) {
		s.Endpoints[0].Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: "zone-nowhere"}}}
	}))
	// Two slices disagree about one endpoint: the first slice by name wins.
	name := "es-conflicting-slices"
	second := c.slice(name, func(s *discovery.EndpointSlice) {
		s.Name = name + "-2"
		f := false
		s.Endpoints[0].Conditions.Ready = &f
	})
	c.sliceEntry(name, nil, true, works(name), c.slice(name), second)
	// A slice for a Service that does not exist, and a Service with none.
	orphan := NewSlice("es-orphan-1", "es-no-such-service", []discovery.EndpointPort{SlicePort("p", tcp, 8080)}, EP{IP: remote0, Node: OtherNode})
	c.add(BadInput{Scenario: Scenario{Name: "es-orphan", Slices: []*discovery.EndpointSlice{orphan}}, APIAccepts: true})

	// 5,000 endpoints in one slice (the API allows 1,000 per slice), and
	// 5 slices of 1,000 for one Service.
	huge := c.slice("es-5000-endpoints", func(s *discovery.EndpointSlice) { s.Endpoints = nil })
	many := []string{}
	for i := range 5000 {
		ip := fmt.Sprintf("10.%d.%d.%d", 128+i/50000, i/250%200, i%250+1)
		huge.Endpoints = append(huge.Endpoints, addr(ip))
		many = append(many, ip+":8080")
	}
	c.sliceEntry("es-5000-endpoints", nil, false, []Case{reaches("es-5000-endpoints", "p", many...)}, huge)
	c.out[len(c.out)-1].TraceOnly = true

	name = "es-5-slices-of-1000"
	var slices []*discovery.EndpointSlice
	var eps []string
	for s := range 5 {
		sl := c.slice(name, func(x *discovery.EndpointSlice) { x.Name = fmt.Sprintf("%s-%d", name, s); x.Endpoints = nil })
		for i := range 1000 {
			ip := fmt.Sprintf("10.%d.%d.%d", 160+s, i/200, i%200+1)
			sl.Endpoints = append(sl.Endpoints, addr(ip))
			eps = append(eps, ip+":8080")
		}
		slices = append(slices, sl)
	}
	c.sliceEntry(name, nil, true, []Case{reaches(name, "p", eps...)}, slices...)
	c.out[len(c.out)-1].TraceOnly = true
}

func ptrTo[T any](v T) *T { return &v }
