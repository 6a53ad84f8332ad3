package flowtest

// The same table over IPv6: every address of a scenario is mapped with
// testrig.IPv6 (198.51.100.11 -> fd00:198:51:100::11, 10.244.1.10 ->
// fd00:10:244:1::10, 10.96.0.10 -> fd00:10:96::0:10), so the cases keep
// their meaning and a dual-stack testrig topology carries the packets.

import (
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// ClusterCIDRv6 holds the IPv6 pod CIDRs of both nodes.
const ClusterCIDRv6 = testrig.ClusterCIDRv6

// otherFamilyRange replaces IPv6 source ranges in the IPv6 table: a range
// of the other family, as the IPv4 table has.
const otherFamilyRange = "203.0.113.0/24"

// ScenariosIPv6 is Scenarios with every address mapped to IPv6: Services
// of family IPv6, IPv6 EndpointSlices, cases naming IPv6 endpoints. Source
// ranges map too, except the IPv4 table's IPv6 ranges, which become IPv4
// ones (still the other family).
func ScenariosIPv6() []Scenario {
	var out []Scenario
	for _, sc := range Scenarios() {
		out = append(out, ScenarioIPv6(sc))
	}
	return out
}

// ScenarioIPv6 maps one scenario to IPv6, as ScenariosIPv6 does.
func ScenarioIPv6(sc Scenario) Scenario {
	v6 := Scenario{Name: sc.Name}
	for _, svc := range sc.Services {
		v6.Services = append(v6.Services, serviceIPv6(svc))
	}
	for _, sl := range sc.Slices {
		v6.Slices = append(v6.Slices, sliceIPv6(sl))
	}
	for _, c := range sc.Cases {
		c.SourceIP = testrig.IPv6(c.SourceIP)
		eps := make([]string, len(c.Endpoints))
		for i, e := range c.Endpoints {
			eps[i] = endpointIPv6(e)
		}
		c.Endpoints = eps
		v6.Cases = append(v6.Cases, c)
	}
	return v6
}

// NodeDualStack is this node's API object with both families' pod CIDRs and
// InternalIPs.
func NodeDualStack() *v1.Node {
	n := Node()
	n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, testrig.IPv6("10.244.1.0")+"/64")
	n.Status.Addresses = append(n.Status.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: testrig.IPv6(ThisNodeIP)})
	return n
}

// SnapshotIPv6 builds the IPv6 snapshot of a ScenariosIPv6 scenario through
// proxier.Tracker, as a dual-stack kproxy would.
func (s *Scenario) SnapshotIPv6() *proxier.Snapshot {
	tr := proxier.NewTracker(ThisNode, []proxier.Family{proxier.IPv6}, nil, time.Time{})
	tr.OnNode(NodeDualStack())
	for _, svc := range s.Services {
		tr.OnService(nil, svc)
	}
	for _, sl := range s.Slices {
		tr.OnEndpointSlice(nil, sl)
	}
	return tr.Checkout().Snapshots[proxier.IPv6]
}

// PacketIPv6 resolves a case of a ScenariosIPv6 scenario: Packet with the
// default sources and this node's address mapped to IPv6.
func (s *Scenario) PacketIPv6(c *Case) (Packet, error) {
	p, err := s.Packet(c)
	if err != nil {
		return p, err
	}
	for _, a := range []*netip.Addr{&p.Src, &p.Dst} {
		if a.Is4() {
			*a = netip.MustParseAddr(testrig.IPv6(a.String()))
		}
	}
	return p, nil
}

func serviceIPv6(in *v1.Service) *v1.Service {
	s := in.DeepCopy()
	s.Spec.ClusterIP = testrig.IPv6(s.Spec.ClusterIP)
	s.Spec.ClusterIPs = []string{s.Spec.ClusterIP}
	s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
	for i, ip := range s.Spec.ExternalIPs {
		s.Spec.ExternalIPs[i] = testrig.IPv6(ip)
	}
	for i := range s.Status.LoadBalancer.Ingress {
		s.Status.LoadBalancer.Ingress[i].IP = testrig.IPv6(s.Status.LoadBalancer.Ingress[i].IP)
	}
	for i, r := range s.Spec.LoadBalancerSourceRanges {
		s.Spec.LoadBalancerSourceRanges[i] = rangeIPv6(r)
	}
	return s
}

func sliceIPv6(in *discovery.EndpointSlice) *discovery.EndpointSlice {
	sl := in.DeepCopy()
	sl.AddressType = discovery.AddressTypeIPv6
	for i := range sl.Endpoints {
		for j, a := range sl.Endpoints[i].Addresses {
			sl.Endpoints[i].Addresses[j] = testrig.IPv6(a)
		}
	}
	return sl
}

// endpointIPv6 maps an "ip:port" endpoint to "[ipv6]:port".
func endpointIPv6(e string) string {
	ap := netip.MustParseAddrPort(e)
	return netip.AddrPortFrom(netip.MustParseAddr(testrig.IPv6(ap.Addr().String())), ap.Port()).String()
}

// rangeIPv6 maps an IPv4 CIDR to its mapped address with 96 more bits:
// exact for single addresses and for ranges outside the rig's plan (the
// only ones the table has); an IPv6 CIDR becomes otherFamilyRange.
func rangeIPv6(r string) string {
	p := netip.MustParsePrefix(r)
	if !p.Addr().Is4() {
		return otherFamilyRange
	}
	return netip.PrefixFrom(netip.MustParseAddr(testrig.IPv6(p.Addr().String())), p.Bits()+96).String()
}
