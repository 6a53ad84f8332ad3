package flowtest

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Namespace of every scenario object.
const Namespace = "default"

func metaName(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"}
}

// ServiceOpt adjusts a Service built by NewService.
type ServiceOpt func(*v1.Service)

// NewService is a ClusterIP Service with the given ports.
func NewService(name, clusterIP string, ports []v1.ServicePort, opts ...ServiceOpt) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metaName(Namespace, name),
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol}, Ports: ports,
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Port is a Service port.
func Port(name string, proto v1.Protocol, port, nodePort int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Protocol: proto, Port: port, NodePort: nodePort}
}

// NodePortType makes a Service of type NodePort.
func NodePortType(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }

// LoadBalancer makes a Service of type LoadBalancer with ingress IPs.
func LoadBalancer(ips ...string) ServiceOpt {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}

// SourceRanges sets loadBalancerSourceRanges.
func SourceRanges(r ...string) ServiceOpt {
	return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

// ExternalIPs sets spec.externalIPs.
func ExternalIPs(ips ...string) ServiceOpt {
	return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
}

// ExternalLocal sets externalTrafficPolicy: Local.
func ExternalLocal(s *v1.Service) {
	s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
}

// InternalLocal sets internalTrafficPolicy: Local.
func InternalLocal(s *v1.Service) {
	p := v1.ServiceInternalTrafficPolicyLocal
	s.Spec.InternalTrafficPolicy = &p
}

// Affinity sets ClientIP session affinity with a timeout in seconds.
func Affinity(seconds int32) ServiceOpt {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &seconds}}
	}
}

// EP is one endpoint of a slice.
type EP struct {
	IP          string
	Node        string
	NotReady    bool
	Terminating bool // implies not ready; still serving
}

// NewSlice is an EndpointSlice of Service svc with the given ports
// (name → target port, protocol) and endpoints.
func NewSlice(name, svc string, ports []discovery.EndpointPort, eps ...EP) *discovery.EndpointSlice {
	sl := &discovery.EndpointSlice{
		ObjectMeta:  metaName(Namespace, name),
		AddressType: discovery.AddressTypeIPv4,
		Ports:       ports,
	}
	sl.Labels = map[string]string{discovery.LabelServiceName: svc}
	for _, e := range eps {
		ready, serving, term := !e.NotReady && !e.Terminating, !e.NotReady || e.Terminating, e.Terminating
		node := e.Node
		sl.Endpoints = append(sl.Endpoints, discovery.Endpoint{
			Addresses:  []string{e.IP},
			NodeName:   &node,
			Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &term},
		})
	}
	return sl
}

// SlicePort is an EndpointSlice port.
func SlicePort(name string, proto v1.Protocol, port int32) discovery.EndpointPort {
	return discovery.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}
