package flowtest

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

const (
	tcp = v1.ProtocolTCP
	udp = v1.ProtocolUDP
)

// Endpoint addresses used by the scenarios: pods 0-2 on both nodes. Echo
// servers in kernel tests listen on EchoPorts.
var (
	local0, local1, local2    = "10.244.1.10", "10.244.1.11", "10.244.1.12"
	remote0, remote1, remote2 = "10.244.2.10", "10.244.2.11", "10.244.2.12"
)

// EchoPorts are the target ports the scenarios use.
var EchoPorts = []int{8080, 5353}

func http8080() []discovery.EndpointPort {
	return []discovery.EndpointPort{SlicePort("http", tcp, 8080)}
}

func ep(ip string) string { return ip + ":8080" }

func httpPort() []v1.ServicePort { return []v1.ServicePort{Port("http", tcp, 80, 0)} }

// Scenarios returns the whole table.
func Scenarios() []Scenario {
	return []Scenario{
		basic(), noEndpoints(), terminating(), nodePorts(), trafficPolicyLocal(),
		external(), loadBalancers(), multiPort(),
	}
}

func basic() Scenario {
	return Scenario{
		Name: "basic",
		Services: []*v1.Service{
			NewService("web", "10.96.0.10", httpPort()),
			NewService("self", "10.96.0.11", httpPort()),
			NewService("sticky", "10.96.0.12", httpPort(), Affinity(300)),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("web-1", "web", http8080(), EP{IP: local0, Node: ThisNode}, EP{IP: remote0, Node: OtherNode},
				EP{IP: remote1, Node: OtherNode}, EP{IP: local1, Node: ThisNode, NotReady: true}),
			NewSlice("self-1", "self", http8080(), EP{IP: local0, Node: ThisNode}),
			NewSlice("sticky-1", "sticky", http8080(), EP{IP: local1, Node: ThisNode}, EP{IP: local2, Node: ThisNode}),
		},
		Cases: []Case{
			{Name: "pod to ClusterIP balances over ready endpoints", Source: FromLocalPod, SourceIP: local2, Service: "web", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0), ep(remote1)}},
			{Name: "node to ClusterIP is masqueraded", Source: FromNode, Service: "web", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0), ep(remote1)}, Masquerade: true},
			{Name: "outside to ClusterIP is masqueraded", Source: FromOutside, Service: "web", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0), ep(remote1)}, Masquerade: true},
			{Name: "hairpin is masqueraded", Source: FromLocalPod, SourceIP: local0, Service: "self", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local0)}, Masquerade: true},
			{Name: "affinity Service reaches its endpoints", Source: FromLocalPod, Service: "sticky", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local1), ep(local2)}},
		},
	}
}

func noEndpoints() Scenario {
	return Scenario{
		Name: "no-endpoints",
		Services: []*v1.Service{
			NewService("empty", "10.96.1.10", []v1.ServicePort{Port("http", tcp, 80, 30010)}, NodePortType),
			NewService("unready", "10.96.1.11", httpPort()),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("unready-1", "unready", http8080(), EP{IP: local0, Node: ThisNode, NotReady: true}),
		},
		Cases: []Case{
			{Name: "ClusterIP without endpoints rejects", Source: FromLocalPod, Service: "empty", Port: "http", Dest: ToClusterIP, Want: Reject},
			{Name: "node to ClusterIP without endpoints rejects", Source: FromNode, Service: "empty", Port: "http", Dest: ToClusterIP, Want: Reject},
			{Name: "NodePort without endpoints rejects", Source: FromOutside, Service: "empty", Port: "http", Dest: ToNodePort, Want: Reject},
			{Name: "only unready endpoints rejects", Source: FromLocalPod, Service: "unready", Port: "http", Dest: ToClusterIP, Want: Reject},
		},
	}
}

func terminating() Scenario {
	return Scenario{
		Name: "terminating",
		Services: []*v1.Service{
			NewService("draining", "10.96.2.10", httpPort()),
			NewService("rolling", "10.96.2.11", httpPort()),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("draining-1", "draining", http8080(), EP{IP: local0, Node: ThisNode, Terminating: true}),
			NewSlice("rolling-1", "rolling", http8080(), EP{IP: local0, Node: ThisNode, Terminating: true}, EP{IP: local1, Node: ThisNode}),
		},
		Cases: []Case{
			{Name: "falls back to terminating endpoints", Source: FromLocalPod, SourceIP: local2, Service: "draining", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local0)}},
			{Name: "prefers ready over terminating", Source: FromLocalPod, SourceIP: local2, Service: "rolling", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local1)}},
		},
	}
}

func nodePorts() Scenario {
	return Scenario{
		Name: "nodeport",
		Services: []*v1.Service{
			NewService("np", "10.96.3.10", []v1.ServicePort{Port("http", tcp, 80, 30080)}, NodePortType),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("np-1", "np", http8080(), EP{IP: local0, Node: ThisNode}, EP{IP: remote0, Node: OtherNode}),
		},
		Cases: []Case{
			{Name: "outside to NodePort is masqueraded", Source: FromOutside, Service: "np", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0)}, Masquerade: true},
			{Name: "remote pod to NodePort is masqueraded", Source: FromRemotePod, Service: "np", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0)}, Masquerade: true},
			{Name: "node to its own NodePort", Source: FromNode, Service: "np", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0)}, Masquerade: true},
		},
	}
}

func trafficPolicyLocal() Scenario {
	return Scenario{
		Name: "traffic-policy-local",
		Services: []*v1.Service{
			NewService("etp", "10.96.4.10", []v1.ServicePort{Port("http", tcp, 80, 30040)}, NodePortType, ExternalLocal),
			NewService("etp-none", "10.96.4.11", []v1.ServicePort{Port("http", tcp, 80, 30041)}, NodePortType, ExternalLocal),
			NewService("itp", "10.96.4.12", httpPort(), InternalLocal),
			NewService("itp-none", "10.96.4.13", httpPort(), InternalLocal),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("etp-1", "etp", http8080(), EP{IP: local1, Node: ThisNode}, EP{IP: remote1, Node: OtherNode}),
			NewSlice("etp-none-1", "etp-none", http8080(), EP{IP: remote1, Node: OtherNode}),
			NewSlice("itp-1", "itp", http8080(), EP{IP: local1, Node: ThisNode}, EP{IP: remote1, Node: OtherNode}),
			NewSlice("itp-none-1", "itp-none", http8080(), EP{IP: remote1, Node: OtherNode}),
		},
		Cases: []Case{
			{Name: "ETP Local keeps the client source and uses local endpoints", Source: FromOutside, Service: "etp", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local1)}},
			{Name: "ETP Local pod traffic short-circuits to all endpoints", Source: FromLocalPod, Service: "etp", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local1), ep(remote1)}},
			{Name: "ETP Local node traffic is masqueraded to all endpoints", Source: FromNode, Service: "etp", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local1), ep(remote1)}, Masquerade: true},
			{Name: "ETP Local ClusterIP uses all endpoints", Source: FromLocalPod, Service: "etp", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local1), ep(remote1)}},
			{Name: "ETP Local without local endpoints drops outside traffic", Source: FromOutside, Service: "etp-none", Port: "http", Dest: ToNodePort, Want: Drop},
			{Name: "ITP Local uses only local endpoints", Source: FromLocalPod, Service: "itp", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{ep(local1)}},
			{Name: "ITP Local without local endpoints drops", Source: FromLocalPod, Service: "itp-none", Port: "http", Dest: ToClusterIP, Want: Drop},
		},
	}
}

func external() Scenario {
	return Scenario{
		Name: "external-ips",
		Services: []*v1.Service{
			NewService("ext", "10.96.5.10", httpPort(), ExternalIPs("10.96.200.10")),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("ext-1", "ext", http8080(), EP{IP: local0, Node: ThisNode}, EP{IP: remote0, Node: OtherNode}),
		},
		Cases: []Case{
			{Name: "outside to externalIP is masqueraded", Source: FromOutside, Service: "ext", Port: "http", Dest: ToExternalIP,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0)}, Masquerade: true},
			{Name: "pod to externalIP", Source: FromLocalPod, SourceIP: local2, Service: "ext", Port: "http", Dest: ToExternalIP,
				Want: Forward, Endpoints: []string{ep(local0), ep(remote0)}, Masquerade: true},
		},
	}
}

func loadBalancers() Scenario {
	return Scenario{
		Name: "loadbalancer",
		Services: []*v1.Service{
			NewService("lb-open", "10.96.6.10", []v1.ServicePort{Port("http", tcp, 80, 30060)}, LoadBalancer("10.96.201.10")),
			NewService("lb-allowed", "10.96.6.11", []v1.ServicePort{Port("http", tcp, 80, 30061)}, LoadBalancer("10.96.201.11"), SourceRanges(ClientIP+"/32")),
			NewService("lb-blocked", "10.96.6.12", []v1.ServicePort{Port("http", tcp, 80, 30062)}, LoadBalancer("10.96.201.12"), SourceRanges("203.0.113.0/24")),
			NewService("lb-v6-ranges", "10.96.6.13", []v1.ServicePort{Port("http", tcp, 80, 30063)}, LoadBalancer("10.96.201.13"), SourceRanges("2001:db8::/64")),
		},
		Slices: []*discovery.EndpointSlice{
			NewSlice("lb-open-1", "lb-open", http8080(), EP{IP: local0, Node: ThisNode}),
			NewSlice("lb-allowed-1", "lb-allowed", http8080(), EP{IP: local0, Node: ThisNode}),
			NewSlice("lb-blocked-1", "lb-blocked", http8080(), EP{IP: local0, Node: ThisNode}),
			NewSlice("lb-v6-ranges-1", "lb-v6-ranges", http8080(), EP{IP: local0, Node: ThisNode}),
		},
		Cases: []Case{
			{Name: "LB IP without source ranges", Source: FromOutside, Service: "lb-open", Port: "http", Dest: ToLoadBalancerIP,
				Want: Forward, Endpoints: []string{ep(local0)}, Masquerade: true},
			{Name: "LB IP from an allowed source", Source: FromOutside, Service: "lb-allowed", Port: "http", Dest: ToLoadBalancerIP,
				Want: Forward, Endpoints: []string{ep(local0)}, Masquerade: true},
			{Name: "LB IP from a blocked source is dropped", Source: FromOutside, Service: "lb-blocked", Port: "http", Dest: ToLoadBalancerIP, Want: Drop},
			{Name: "LB IP with ranges of the other family fails closed", Source: FromOutside, Service: "lb-v6-ranges", Port: "http", Dest: ToLoadBalancerIP, Want: Drop},
			{Name: "NodePort of a source-ranged LB is not filtered", Source: FromOutside, Service: "lb-blocked", Port: "http", Dest: ToNodePort,
				Want: Forward, Endpoints: []string{ep(local0)}, Masquerade: true},
		},
	}
}

func multiPort() Scenario {
	ports := []v1.ServicePort{Port("http", tcp, 80, 0), Port("dns", udp, 53, 0)}
	slicePorts := []discovery.EndpointPort{SlicePort("http", tcp, 8080), SlicePort("dns", udp, 5353)}
	return Scenario{
		Name:     "multi-port",
		Services: []*v1.Service{NewService("multi", "10.96.7.10", ports)},
		Slices:   []*discovery.EndpointSlice{NewSlice("multi-1", "multi", slicePorts, EP{IP: local1, Node: ThisNode})},
		Cases: []Case{
			{Name: "TCP port maps to its target port", Source: FromLocalPod, Service: "multi", Port: "http", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{local1 + ":8080"}},
			{Name: "UDP port maps to its target port", Source: FromLocalPod, Service: "multi", Port: "dns", Dest: ToClusterIP,
				Want: Forward, Endpoints: []string{local1 + ":5353"}},
		},
	}
}
