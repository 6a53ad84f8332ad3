package loadgen

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CreateProbe creates probe Service name with one endpoint addr:port (a real
// echo server) and returns its ClusterIP. The slice's trigger time is start,
// which the caller takes just before the call.
func CreateProbe(ctx context.Context, c kubernetes.Interface, ns, name, addr string, port int32, start time.Time) (string, error) {
	svc, err := c.CoreV1().Services(ns).Create(ctx, Service(ns, name, "probe", port), metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create probe service %s: %w", name, err)
	}
	eps := Slice(ns, name, "probe", []string{addr}, port, start)
	if _, err := c.DiscoveryV1().EndpointSlices(ns).Create(ctx, eps, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create probe endpointslice %s: %w", name, err)
	}
	return svc.Spec.ClusterIP, nil
}

// TouchLoad changes load Service i's slice (it moves the first endpoint to
// another fake address and back on the next call, and sets the trigger
// time), which makes a proxy do one partial sync for one Service.
func TouchLoad(ctx context.Context, c kubernetes.Interface, ns string, i, m int, now time.Time) error {
	slices := c.DiscoveryV1().EndpointSlices(ns)
	eps, err := slices.Get(ctx, LoadName(i)+"-1", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("touch load service %d: %w", i, err)
	}
	if len(eps.Endpoints) == 0 || len(eps.Endpoints[0].Addresses) == 0 {
		return fmt.Errorf("touch load service %d: slice has no endpoints", i)
	}
	orig, alt := FakeEndpointIP(i, 0, m), "10.244.127.1"
	if eps.Endpoints[0].Addresses[0] == orig {
		eps.Endpoints[0].Addresses[0] = alt
	} else {
		eps.Endpoints[0].Addresses[0] = orig
	}
	SetTrigger(eps, now)
	if _, err := slices.Update(ctx, eps, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("touch load service %d: %w", i, err)
	}
	return nil
}
