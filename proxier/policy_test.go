package proxier

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// The per-port policy every mode translates: verdicts, endpoint sets and
// the no-local-endpoints count, decided once.
func TestPortPolicy(t *testing.T) {
	local := epSpec{ip: "10.244.1.10", node: "me"}
	remote := epSpec{ip: "10.244.2.10", node: "other"}
	itpLocal := func(s *v1.Service) { s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal) }
	etpLocal := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}
	lbNoAddress := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}
	for _, tc := range []struct {
		name               string
		mutate             func(*v1.Service)
		eps                []epSpec
		internal, external Verdict
		short              int
		noLocalInt, noExt  bool
	}{
		{"cluster, endpoints", nil, []epSpec{remote}, Forward, Forward, 0, false, false},
		{"cluster, none", nil, nil, Reject, Reject, 0, false, false},
		{"itp Local, none here", itpLocal, []epSpec{remote}, Drop, Forward, 0, true, false},
		{"itp Local, none at all: rejected, not counted", itpLocal, nil, Reject, Reject, 0, false, false},
		{"itp Local, one here", itpLocal, []epSpec{local, remote}, Forward, Forward, 0, false, false},
		{"etp Local, none here: pods and node short-circuit", etpLocal, []epSpec{remote}, Forward, Drop, 1, false, true},
		{"etp Local, none at all", etpLocal, nil, Reject, Reject, 0, false, false},
		{"etp Local, one here", etpLocal, []epSpec{local, remote}, Forward, Forward, 2, false, false},
		{"etp Local LoadBalancer without addresses still counts", lbNoAddress, []epSpec{remote}, Forward, Drop, 1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mut []func(*v1.Service)
			if tc.mutate != nil {
				mut = append(mut, tc.mutate)
			}
			tr := NewTracker("me", []Family{IPv4}, nil, time.Unix(0, 0))
			tr.OnService(nil, svc("ns", "a", "10.96.0.1", mut...))
			tr.OnEndpointSlice(nil, slice("ns", "a", "a-1", tc.eps...))
			tr.SetServicesSynced()
			tr.SetSlicesSynced()
			snap := tr.Checkout().Snapshots[IPv4]
			p := &snap.Services[key("ns", "a")].Ports[0]
			pp := p.Policy(&snap.Node)
			if pp.InternalVerdict != tc.internal || pp.ExternalVerdict != tc.external || len(pp.ShortCircuit) != tc.short ||
				pp.NoLocalInternal != tc.noLocalInt || pp.NoLocalExternal != tc.noExt {
				t.Errorf("policy internal %s external %s short-circuit %d no-local %v/%v, want %s %s %d %v/%v",
					pp.InternalVerdict, pp.ExternalVerdict, len(pp.ShortCircuit), pp.NoLocalInternal, pp.NoLocalExternal,
					tc.internal, tc.external, tc.short, tc.noLocalInt, tc.noExt)
			}
			want := map[string]int{"internal": 0, "external": 0}
			if tc.noLocalInt {
				want["internal"] = 1
			}
			if tc.noExt {
				want["external"] = 1
			}
			if got := NoLocalEndpoints(snap); got["internal"] != want["internal"] || got["external"] != want["external"] {
				t.Errorf("NoLocalEndpoints %v, want %v", got, want)
			}
		})
	}
}

// Source ranges: who may reach the LB IPs, the same for every mode. The
// LB IPs themselves are allowed as sources when the node's primary address
// is in a range (traffic from the node to a local LB IP loops back with it
// as the source).
func TestPortPolicySourceRanges(t *testing.T) {
	node := &NodeInfo{Name: "me", IPs: []netip.Addr{netip.MustParseAddr("198.51.100.11")}}
	for _, tc := range []struct {
		name     string
		ranges   []string
		lb       bool
		firewall bool
		allowed  string
	}{
		{"node in a range", []string{"198.51.100.0/24", "203.0.113.0/24"}, true, true, "198.51.100.0/24 203.0.113.0/24 192.0.2.7/32"},
		{"node in no range", []string{"203.0.113.0/24"}, true, true, "203.0.113.0/24"},
		{"no range of this family: nobody", []string{"2001:db8::/32"}, true, true, ""},
		{"zero-masked: no firewall", []string{"0.0.0.0/0"}, true, false, ""},
		{"no LB IP: no firewall", []string{"203.0.113.0/24"}, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = tc.ranges
				if tc.lb {
					s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.7"}}
				}
			})
			ports, _ := ServicePortsFromAPI(s, IPv4)
			p := &Port{ServicePort: ports[0]}
			pp := p.Policy(node)
			var got []string
			for _, a := range pp.AllowedSources {
				got = append(got, a.String())
			}
			if pp.Firewall != tc.firewall || strings.Join(got, " ") != tc.allowed {
				t.Errorf("firewall %v allowed %q, want %v %q", pp.Firewall, got, tc.firewall, tc.allowed)
			}
		})
	}
}

// ipvs's deliberate departure, named: with ExternalFallback an ETP=Local
// port without a local endpoint serves pods and the node from the Cluster
// endpoints and drops only traffic from outside; without it (every other
// mode) external traffic is dropped and short-circuiting is the mode's job.
func TestPortPolicyExternalFallback(t *testing.T) {
	tr := NewTracker("me", []Family{IPv4}, nil, time.Unix(0, 0))
	tr.OnService(nil, svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}))
	tr.OnEndpointSlice(nil, slice("ns", "a", "a-1", epSpec{ip: "10.244.2.10", node: "other"}))
	tr.SetServicesSynced()
	tr.SetSlicesSynced()
	snap := tr.Checkout().Snapshots[IPv4]
	p := &snap.Services[key("ns", "a")].Ports[0]
	if pp := p.Policy(&snap.Node); pp.ExternalVerdict != Drop || pp.DropFromOutside || len(pp.External) != 0 {
		t.Errorf("common policy: %+v", pp)
	}
	pp := p.PolicyWith(&snap.Node, PolicyOptions{ExternalFallback: true})
	if pp.ExternalVerdict != Forward || !pp.DropFromOutside || len(pp.External) != 1 || !pp.NoLocalExternal {
		t.Errorf("with ExternalFallback: %+v", pp)
	}
}
