package proxier

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestServicePortsFromAPI(t *testing.T) {
	tests := []struct {
		name     string
		svc      *v1.Service
		family   Family
		wantPort []string // Name.String()/proto
		wantErrs []string // substrings, in order
		check    func(t *testing.T, ps []ServicePort)
	}{
		{name: "clusterip", svc: svc("ns", "a", "10.96.0.1"), family: IPv4, wantPort: []string{"ns/a:p/TCP"},
			check: func(t *testing.T, ps []ServicePort) {
				if ps[0].ClusterIP != netip.MustParseAddr("10.96.0.1") || ps[0].Port != 80 || ps[0].NodePort != 0 || ps[0].ExternallyAccessible() {
					t.Errorf("bad port %+v", ps[0])
				}
			}},
		{name: "other family has nothing", svc: svc("ns", "a", "10.96.0.1"), family: IPv6},
		{name: "headless skipped silently", svc: svc("ns", "a", "None"), family: IPv4},
		{name: "externalname skipped", svc: svc("ns", "a", "", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeExternalName; s.Spec.ClusterIPs = nil }), family: IPv4},
		{name: "other proxy's", svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) { s.Labels = map[string]string{LabelServiceProxyName: "x"} }), family: IPv4},
		{name: "dual stack v6", family: IPv6, wantPort: []string{"ns/a:p/TCP"},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
				s.Spec.ClusterIPs = []string{"10.96.0.1", "fd00::1"}
				s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
			}),
			check: func(t *testing.T, ps []ServicePort) {
				if ps[0].ClusterIP != netip.MustParseAddr("fd00::1") {
					t.Errorf("clusterIP %v", ps[0].ClusterIP)
				}
			}},
		{name: "bad clusterIP", family: IPv4, svc: svc("ns", "a", "10.96.0.300"), wantErrs: []string{"not an IP address"}},
		{name: "wrong family clusterIP", family: IPv4, wantErrs: []string{"is not of family"},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) { s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol} })},
		{name: "bad ports skipped, good kept", family: IPv4, wantPort: []string{"ns/a:p/TCP"},
			wantErrs: []string{"unknown protocol", "port 0 out of range", "port 65536 out of range", "duplicate port name", "duplicate port 80/TCP"},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
				s.Spec.Ports = append(s.Spec.Ports,
					v1.ServicePort{Name: "icmp", Port: 1, Protocol: "ICMP"},
					v1.ServicePort{Name: "zero", Port: 0, Protocol: v1.ProtocolTCP},
					v1.ServicePort{Name: "big", Port: 65536, Protocol: v1.ProtocolTCP},
					v1.ServicePort{Name: "p", Port: 81, Protocol: v1.ProtocolTCP},
					v1.ServicePort{Name: "q", Port: 80, Protocol: v1.ProtocolTCP})
			})},
		{name: "loadbalancer", family: IPv4, wantPort: []string{"ns/a:p/TCP"}, wantErrs: []string{`"300.1.1.1" is not an IP`, `"nope" is not a CIDR`},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 31000
				s.Spec.ExternalIPs = []string{"198.51.100.50", "fd00::50", "300.1.1.1"}
				s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24", "nope"}
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.60"}, {Hostname: "lb.example"},
					{IP: "198.51.100.61", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}}
			}),
			check: func(t *testing.T, ps []ServicePort) {
				p := ps[0]
				if p.NodePort != 30080 || !p.ExternalPolicyLocal || p.HealthCheckNodePort != 31000 || !p.HasSourceRanges {
					t.Errorf("bad port %+v", p)
				}
				if len(p.ExternalIPs) != 1 || len(p.LoadBalancerIPs) != 1 || p.LoadBalancerIPs[0].String() != "198.51.100.60" {
					t.Errorf("ips %v %v (Proxy-mode ingress must be skipped)", p.ExternalIPs, p.LoadBalancerIPs)
				}
				if len(p.SourceRanges) != 1 || p.SourceRanges[0].String() != "203.0.113.0/24" {
					t.Errorf("ranges %v", p.SourceRanges)
				}
				if !p.UsesLocalEndpoints() || !p.UsesClusterEndpoints() {
					t.Error("ETP=Local LB uses local endpoints for external and cluster ones for internal traffic")
				}
			}},
		{name: "ETP local ignored without external access", family: IPv4, wantPort: []string{"ns/a:p/TCP"},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }),
			check: func(t *testing.T, ps []ServicePort) {
				if ps[0].ExternalPolicyLocal || ps[0].UsesLocalEndpoints() {
					t.Errorf("port %+v", ps[0])
				}
			}},
		{name: "ITP local and affinity default", family: IPv4, wantPort: []string{"ns/a:p/TCP"},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
				s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			}),
			check: func(t *testing.T, ps []ServicePort) {
				if !ps[0].InternalPolicyLocal || ps[0].UsesClusterEndpoints() || ps[0].AffinityTimeout != DefaultAffinityTimeout {
					t.Errorf("port %+v", ps[0])
				}
			}},
		{name: "unnamed udp port", family: IPv4, wantPort: []string{"ns/a/UDP"},
			svc: svc("ns", "a", "10.96.0.1", func(s *v1.Service) { s.Spec.Ports = []v1.ServicePort{{Port: 53, Protocol: v1.ProtocolUDP}} })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, errs := ServicePortsFromAPI(tc.svc, tc.family)
			var got []string
			for _, p := range ps {
				got = append(got, p.Name.String()+"/"+string(p.Protocol))
			}
			if strings.Join(got, ",") != strings.Join(tc.wantPort, ",") {
				t.Fatalf("ports = %v, want %v", got, tc.wantPort)
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors = %v, want %d matching %v", errs, len(tc.wantErrs), tc.wantErrs)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.wantErrs[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, e, tc.wantErrs[i])
				}
			}
			if tc.check != nil {
				tc.check(t, ps)
			}
		})
	}
}

func TestBadSourceRangesFailClosed(t *testing.T) {
	s := svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{"garbage"}
	})
	ps, errs := ServicePortsFromAPI(s, IPv4)
	if len(errs) != 1 || len(ps) != 1 || !ps[0].HasSourceRanges || len(ps[0].SourceRanges) != 0 {
		t.Fatalf("want a closed firewall, got %+v, %v", ps, errs)
	}
}

// A zero-masked range allows every source of its family: no firewall for
// that family (kube-proxy's serviceport.go); the other family keeps its own
// ranges.
func TestZeroMaskedSourceRangeAllowsAll(t *testing.T) {
	s := svc("ns", "a", "10.96.0.1", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ClusterIPs = []string{"10.96.0.1", "fd00::1"}
		s.Spec.LoadBalancerSourceRanges = []string{"192.0.2.0/24", " 0.0.0.0/0 ", "2001:db8::/64"}
	})
	ps, _ := ServicePortsFromAPI(s, IPv4)
	if len(ps) != 1 || ps[0].HasSourceRanges || len(ps[0].SourceRanges) != 0 {
		t.Errorf("IPv4: want no firewall, got %+v", ps)
	}
	ps, _ = ServicePortsFromAPI(s, IPv6)
	if len(ps) != 1 || !ps[0].HasSourceRanges || len(ps[0].SourceRanges) != 1 {
		t.Errorf("IPv6: want the 2001:db8::/64 firewall, got %+v", ps)
	}
}
