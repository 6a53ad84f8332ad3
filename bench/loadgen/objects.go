package loadgen

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// ManagedBy is the EndpointSlice managed-by label value of every slice
	// loadgen writes.
	ManagedBy = "kproxy-bench"
	// RoleLabel tells load objects ("load") from probe objects ("probe").
	RoleLabel = "kproxy-bench/role"
	// PortName is the name of the single Service port.
	PortName = "http"
	// ServicePort is the Service port of every generated Service.
	ServicePort = 80
	// TargetPort is the endpoint port of load Services.
	TargetPort = 8080
)

// LoadName returns the name of load Service i.
func LoadName(i int) string { return fmt.Sprintf("svc-%d", i) }

// FakeEndpointIP returns endpoint j of load Service i. The addresses live in
// 10.244.128.0/17 (inside the cluster CIDR, away from the rig's real pods in
// 10.244.<node>.0/24) and wrap around; nothing ever sends traffic to them.
func FakeEndpointIP(i, j, m int) string {
	k := (i*m + j) % (1 << 15)
	return fmt.Sprintf("10.244.%d.%d", 128+k/256, k%256)
}

// Service returns a ClusterIP Service with one TCP port 80 → targetPort.
func Service(ns, name, role string, targetPort int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{RoleLabel: role}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			// As a Service the endpoint controller serves; it does not run
			// here, the load generator writes the slices in its stead.
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{
				Name: PortName, Port: ServicePort, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromInt32(targetPort),
			}},
		},
	}
}

// Slice returns the EndpointSlice of Service name with ready endpoints at
// addrs:port, as the endpoint controller writes it, with the trigger time
// annotation set to trigger.
func Slice(ns, name, role string, addrs []string, port int32, trigger time.Time) *discoveryv1.EndpointSlice {
	pn, proto := PortName, corev1.ProtocolTCP
	eps := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name + "-1",
			Namespace: ns,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   ManagedBy,
				RoleLabel:                    role,
			},
			Annotations: map[string]string{},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &pn, Port: &port, Protocol: &proto}},
	}
	SetTrigger(eps, trigger)
	for _, a := range addrs {
		yes, no := true, false
		eps.Endpoints = append(eps.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no},
		})
	}
	return eps
}

// SetTrigger sets the last-change-trigger-time annotation, which proxies use
// to report kubeproxy_network_programming_duration_seconds.
func SetTrigger(eps *discoveryv1.EndpointSlice, t time.Time) {
	if eps.Annotations == nil {
		eps.Annotations = map[string]string{}
	}
	eps.Annotations[corev1.EndpointsLastChangeTriggerTime] = t.UTC().Format(time.RFC3339Nano)
}

// LoadObjects returns load Service i with m fake endpoints.
func LoadObjects(ns string, i, m int, trigger time.Time) (*corev1.Service, *discoveryv1.EndpointSlice) {
	name := LoadName(i)
	addrs := make([]string, m)
	for j := range addrs {
		addrs[j] = FakeEndpointIP(i, j, m)
	}
	return Service(ns, name, "load", TargetPort), Slice(ns, name, "load", addrs, TargetPort, trigger)
}
