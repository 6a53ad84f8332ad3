package proxier

import (
	"net/netip"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// Annotation the endpoint controller sets on EndpointSlices; the time it
// names starts the network programming latency clock.
const AnnotationTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"

// Slice is an EndpointSlice stripped to what a proxy needs.
type Slice struct {
	Family    Family
	Ports     []SlicePort
	Endpoints []SliceEndpoint
	// TriggerTime is the last-change-trigger-time annotation, zero if none.
	TriggerTime time.Time
}

// SlicePort is one port of an EndpointSlice.
type SlicePort struct {
	Name     string
	Port     int32
	Protocol v1.Protocol
}

// SliceEndpoint is one endpoint of an EndpointSlice (its first address).
type SliceEndpoint struct {
	IP          netip.Addr
	Ready       bool
	Serving     bool
	Terminating bool
	NodeName    string
	Zone        string
	ZoneHints   []string
	NodeHints   []string
}

// SliceFromAPI strips an EndpointSlice. A slice that cannot be used at all
// (FQDN, unknown address type) returns nil and one error; a bad endpoint or
// port is dropped and reported while the rest of the slice is kept.
func SliceFromAPI(es *discovery.EndpointSlice) (*Slice, []error) {
	family, ok := sliceFamily(es.AddressType)
	if !ok {
		return nil, []error{errf("addressType %q is not proxied", es.AddressType)}
	}
	s := &Slice{Family: family}
	if t, err := time.Parse(time.RFC3339, es.Annotations[AnnotationTriggerTime]); err == nil {
		s.TriggerTime = t
	}
	var errs []error
	s.Ports, errs = slicePortsFromAPI(es.Ports)
	for i := range es.Endpoints {
		endpoint, err := sliceEndpointFromAPI(i, &es.Endpoints[i], family, es.AddressType)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Endpoints = append(s.Endpoints, endpoint)
	}
	return s, errs
}

// sliceFamily is the IP family of an addressType; FQDN and unknown types
// have none.
func sliceFamily(addressType discovery.AddressType) (Family, bool) {
	switch addressType {
	case discovery.AddressTypeIPv4:
		return IPv4, true
	case discovery.AddressTypeIPv6:
		return IPv6, true
	}
	return "", false
}

// slicePortsFromAPI keeps the valid ports of a slice, the first of each
// name, and reports the others.
func slicePortsFromAPI(apiPorts []discovery.EndpointPort) ([]SlicePort, []error) {
	var ports []SlicePort
	var errs []error
	seen := map[string]bool{}
	for _, p := range apiPorts {
		name, proto := "", v1.ProtocolTCP
		if p.Name != nil {
			name = *p.Name
		}
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		switch {
		case p.Port == nil:
			// A nil port means "all ports"; kube-proxy ignores it too.
			continue
		case *p.Port <= 0 || *p.Port > 65535:
			errs = append(errs, errf("port %q: port %d out of range", name, *p.Port))
			continue
		case !ValidProtocol(proto):
			errs = append(errs, errf("port %q: unknown protocol %q", name, proto))
			continue
		case seen[name]:
			errs = append(errs, errf("duplicate port name %q", name))
			continue
		}
		seen[name] = true
		ports = append(ports, SlicePort{Name: name, Port: *p.Port, Protocol: proto})
	}
	return ports, errs
}

// sliceEndpointFromAPI strips endpoint index of a slice of the given family,
// or says why it cannot be used.
func sliceEndpointFromAPI(index int, ep *discovery.Endpoint, family Family, addressType discovery.AddressType) (SliceEndpoint, error) {
	ip, err := sliceEndpointIP(index, ep, family, addressType)
	if err != nil {
		return SliceEndpoint{}, err
	}
	endpoint := SliceEndpoint{
		IP: ip,
		// nil ready and serving mean true, nil terminating means false.
		Ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
		Serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
		Terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
	}
	if ep.NodeName != nil {
		endpoint.NodeName = *ep.NodeName
	}
	if ep.Zone != nil {
		endpoint.Zone = *ep.Zone
	}
	if ep.Hints != nil {
		for _, zone := range ep.Hints.ForZones {
			endpoint.ZoneHints = append(endpoint.ZoneHints, zone.Name)
		}
		for _, node := range ep.Hints.ForNodes {
			endpoint.NodeHints = append(endpoint.NodeHints, node.Name)
		}
	}
	return endpoint, nil
}

// sliceEndpointIP is the endpoint's first address: a unicast IP of the
// slice's family.
func sliceEndpointIP(index int, ep *discovery.Endpoint, family Family, addressType discovery.AddressType) (netip.Addr, error) {
	if len(ep.Addresses) == 0 {
		return netip.Addr{}, errf("endpoint %d has no address", index)
	}
	ip, err := netip.ParseAddr(ep.Addresses[0])
	if err != nil {
		return netip.Addr{}, errf("endpoint %q is not an IP address", ep.Addresses[0])
	}
	ip = ip.Unmap()
	if FamilyOf(ip) != family {
		return netip.Addr{}, errf("endpoint %s is not of addressType %s", ip, addressType)
	}
	if !ip.IsGlobalUnicast() {
		return netip.Addr{}, errf("endpoint %s is not a unicast address", ip)
	}
	return ip, nil
}

// mergeEndpoints builds the endpoints of one service port from all the
// slices of its Service, deduplicated by ip:port and sorted by their
// "ip:port" string, as kube-proxy sorts them (so that the probability rules
// of a Service read the same).
//
// The same ip:port may be listed twice: a new pod reusing the IP of one
// that is terminating, each in its own slice. kube-proxy's
// endpointslicecache lets a later copy replace an earlier one unless it is
// terminating, reading slices in map order: the live copy wins, and within
// one slice the last live copy. kproxy does the same where that is
// defined, reading slices in name order; where kube-proxy's choice depends
// on map order (two live copies in different slices) the ready copy wins,
// else the first.
func mergeEndpoints(slices map[string]*Slice, port ServicePortName, family Family, nodeName string) []Endpoint {
	names := make([]string, 0, len(slices))
	for n := range slices {
		names = append(names, n)
	}
	sort.Strings(names)
	type seen struct {
		at    int    // index in out
		slice string // the slice the kept copy came from
	}
	byAddr := map[netip.AddrPort]seen{}
	var out []Endpoint
	if n := countPortEndpoints(slices, port, family); n > 0 {
		out = make([]Endpoint, 0, n) // kept in the snapshot: no growth slack
	}
	for _, n := range names {
		s := slices[n]
		if s.Family != family {
			continue
		}
		for _, sp := range s.Ports {
			if sp.Name != port.Port || sp.Protocol != port.Protocol {
				continue
			}
			for _, se := range s.Endpoints {
				e := Endpoint{
					IP: se.IP, Port: sp.Port,
					Ready: se.Ready, Serving: se.Serving, Terminating: se.Terminating,
					NodeName: se.NodeName, Zone: se.Zone, ZoneHints: se.ZoneHints, NodeHints: se.NodeHints,
					Local: nodeName != "" && se.NodeName == nodeName,
				}
				prev, dup := byAddr[e.AddrPort()]
				if !dup {
					byAddr[e.AddrPort()] = seen{len(out), n}
					out = append(out, e)
					continue
				}
				old := &out[prev.at]
				if !e.Terminating && (old.Terminating || prev.slice == n || e.Ready && !old.Ready) {
					*old = e
					byAddr[e.AddrPort()] = seen{prev.at, n}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// countPortEndpoints is how many endpoints the slices list for port, an
// upper bound of what mergeEndpoints returns.
func countPortEndpoints(slices map[string]*Slice, port ServicePortName, family Family) int {
	n := 0
	for _, s := range slices {
		if s.Family != family {
			continue
		}
		for _, sp := range s.Ports {
			if sp.Name == port.Port && sp.Protocol == port.Protocol {
				n += len(s.Endpoints)
			}
		}
	}
	return n
}
