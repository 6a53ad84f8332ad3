package conntrack

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kproxy/kproxy/proxier"
)

// The helpers here build snapshots the way production does: API objects
// through a proxier.Tracker.

const testNode = "node1"

type svcPort struct {
	name     string
	port     int32
	proto    v1.Protocol
	nodePort int32
}

// service builds a Service; typ "" is ClusterIP.
func service(name, clusterIP string, typ v1.ServiceType, ports ...svcPort) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       v1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Type: typ},
	}
	if typ == "" {
		s.Spec.Type = v1.ServiceTypeClusterIP
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: p.name, Port: p.port, Protocol: p.proto, NodePort: p.nodePort})
	}
	return s
}

type ep struct {
	ip                          string
	ready, serving, terminating bool
	node                        string
}

// slice builds the EndpointSlice of Service svc with one port per
// (name, port, protocol) of ports.
func slice(svc, name string, ports []svcPort, eps ...ep) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name,
			Labels: map[string]string{discovery.LabelServiceName: svc},
		},
		AddressType: discovery.AddressTypeIPv4,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discovery.EndpointPort{Name: ptr.To(p.name), Port: ptr.To(p.port), Protocol: ptr.To(p.proto)})
	}
	for _, e := range eps {
		node := e.node
		if node == "" {
			node = testNode
		}
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{
			Addresses: []string{e.ip},
			Conditions: discovery.EndpointConditions{
				Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating),
			},
			NodeName: ptr.To(node),
		})
	}
	return s
}

// ready is a ready endpoint on this node.
func ready(ip string) ep { return ep{ip: ip, ready: true, serving: true} }

// snapshot returns the IPv4 snapshot of the objects.
func snapshot(t testing.TB, objs ...any) *proxier.Snapshot {
	t.Helper()
	tr := proxier.NewTracker(testNode, []proxier.Family{proxier.IPv4}, func(kind, name string, err error) {
		t.Errorf("invalid %s %s: %v", kind, name, err)
	}, time.Now())
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			tr.OnService(nil, o)
		case *discovery.EndpointSlice:
			tr.OnEndpointSlice(nil, o)
		default:
			t.Fatalf("snapshot: unexpected %T", o)
		}
	}
	tr.SetServicesSynced()
	tr.SetSlicesSynced()
	return tr.Checkout().Snapshots[proxier.IPv4]
}

func nsName(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "ns", Name: name}
}
