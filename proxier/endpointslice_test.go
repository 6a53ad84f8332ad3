package proxier

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestSliceFromAPI(t *testing.T) {
	es := slice("ns", "a", "a-1",
		epSpec{ip: "10.244.1.10", node: "n1"},
		epSpec{ip: "10.244.1.11", ready: ptr.To(false), serving: ptr.To(true), terminating: ptr.To(true)},
		epSpec{ip: "fd00::1"},
		epSpec{ip: "banana"},
		epSpec{ip: "127.0.0.1"},
	)
	es.Endpoints = append(es.Endpoints, discovery.Endpoint{})
	es.Ports = append(es.Ports,
		discovery.EndpointPort{Name: ptr.To("p"), Port: ptr.To[int32](9090)},
		discovery.EndpointPort{Name: ptr.To("zero"), Port: ptr.To[int32](0)},
		discovery.EndpointPort{Name: ptr.To("all")},
		discovery.EndpointPort{Name: ptr.To("x"), Port: ptr.To[int32](1), Protocol: ptr.To(v1.Protocol("GRE"))},
	)
	s, errs := SliceFromAPI(es)
	want := []string{"not of addressType", `"banana" is not an IP`, "not a unicast", "has no address",
		"duplicate port name", "port 0 out of range", "unknown protocol"}
	if len(errs) != len(want) {
		t.Fatalf("errs = %v", errs)
	}
	joined := ""
	for _, e := range errs {
		joined += e.Error() + "\n"
	}
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("missing error %q in\n%s", w, joined)
		}
	}
	if len(s.Endpoints) != 2 || len(s.Ports) != 1 {
		t.Fatalf("kept %d endpoints, %d ports", len(s.Endpoints), len(s.Ports))
	}
	if e := s.Endpoints[0]; !e.Ready || !e.Serving || e.Terminating || e.NodeName != "n1" {
		t.Errorf("nil conditions must mean ready, serving, not terminating: %+v", e)
	}
	if e := s.Endpoints[1]; e.Ready || !e.Serving || !e.Terminating {
		t.Errorf("conditions %+v", e)
	}
}

func TestSliceFQDNRejected(t *testing.T) {
	es := slice("ns", "a", "a-1", epSpec{ip: "example.com"})
	es.AddressType = discovery.AddressTypeFQDN
	s, errs := SliceFromAPI(es)
	if s != nil || len(errs) != 1 {
		t.Fatalf("FQDN slice must be rejected whole: %v %v", s, errs)
	}
}

func TestMergeEndpointsDedupesAcrossSlices(t *testing.T) {
	a, _ := SliceFromAPI(slice("ns", "a", "a-1", epSpec{ip: "10.244.1.11"}, epSpec{ip: "10.244.1.10", node: "me"}))
	b, _ := SliceFromAPI(slice("ns", "a", "a-2", epSpec{ip: "10.244.1.10", ready: ptr.To(false)}, epSpec{ip: "10.244.1.12"}))
	eps := mergeEndpoints(map[string]*Slice{"a-2": b, "a-1": a}, ServicePortName{Port: "p", Protocol: v1.ProtocolTCP}, IPv4, "me")
	if got := strings.Join(endpointStrings(eps), ","); got != "10.244.1.10:8080,10.244.1.11:8080,10.244.1.12:8080" {
		t.Fatalf("endpoints %s", got)
	}
	if !eps[0].Ready || !eps[0].Local {
		t.Errorf("of two live copies in different slices the ready one wins, and locality follows its nodeName: %+v", eps[0])
	}
	// Within one slice the last live copy wins, as in kube-proxy.
	one, _ := SliceFromAPI(slice("ns", "a", "a-1", epSpec{ip: "10.244.1.10", node: "me"}, epSpec{ip: "10.244.1.10", ready: ptr.To(false)},
		epSpec{ip: "10.244.1.10", ready: ptr.To(false), terminating: ptr.To(true)}))
	eps = mergeEndpoints(map[string]*Slice{"a-1": one}, ServicePortName{Port: "p", Protocol: v1.ProtocolTCP}, IPv4, "me")
	if len(eps) != 1 || eps[0].Ready || eps[0].Terminating {
		t.Errorf("within one slice the last live copy wins: %+v", eps)
	}
}

// A new pod may reuse the IP of one that is still terminating, each in its
// own slice: the copy that is not terminating wins, whichever slice sorts
// first (kube-proxy's endpointslicecache addEndpoints).
func TestMergeEndpointsPrefersNotTerminatingCopy(t *testing.T) {
	old, _ := SliceFromAPI(slice("ns", "a", "a-1", epSpec{ip: "10.244.1.10", ready: ptr.To(false), serving: ptr.To(true), terminating: ptr.To(true)}))
	cur, _ := SliceFromAPI(slice("ns", "a", "a-2", epSpec{ip: "10.244.1.10", node: "me"}))
	for _, order := range []map[string]*Slice{{"a-1": old, "a-2": cur}, {"a-1": cur, "a-2": old}} {
		eps := mergeEndpoints(order, ServicePortName{Port: "p", Protocol: v1.ProtocolTCP}, IPv4, "me")
		if len(eps) != 1 || !eps[0].Ready || eps[0].Terminating || !eps[0].Local {
			t.Errorf("want the ready copy, got %+v", eps)
		}
	}
}

// Endpoints are ordered by their "ip:port" string, as kube-proxy orders
// them, not numerically: 10.244.1.100 comes before 10.244.1.9.
func TestMergeEndpointsSortedAsStrings(t *testing.T) {
	s, _ := SliceFromAPI(slice("ns", "a", "a-1", epSpec{ip: "10.244.1.9"}, epSpec{ip: "10.244.1.100"}, epSpec{ip: "10.244.1.10"}))
	eps := mergeEndpoints(map[string]*Slice{"a-1": s}, ServicePortName{Port: "p", Protocol: v1.ProtocolTCP}, IPv4, "")
	if got := strings.Join(endpointStrings(eps), ","); got != "10.244.1.100:8080,10.244.1.10:8080,10.244.1.9:8080" {
		t.Errorf("order %s", got)
	}
}
