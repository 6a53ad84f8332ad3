package ipvs

import (
	"context"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// paritySvc is a Service of the parity world with its EndpointSlice.
type paritySvc struct {
	svc   *v1.Service
	slice *discovery.EndpointSlice
}

// parityWorld is one Service per thing the ipvs mode translates: ports of
// every protocol, NodePorts, load balancers with and without source
// ranges (one of them zero-masked), externalIPs, both traffic policies
// Local with and without local endpoints, affinity, no endpoints, only
// terminating endpoints, and a not-ready endpoint. "vmnode" is this node.
func parityWorld() []paritySvc {
	const local, remote = "10.244.200.10@" + e2eNode, "10.244.7.20@other"
	mk := func(name, ip string, ports []string, eps []ep, opts ...svcOpt) paritySvc {
		s := makeService("parity", name, ip, ports, opts...)
		return paritySvc{s, makeSlice(s, eps...)}
	}
	return []paritySvc{
		mk("multi", "10.96.210.1", []string{"80", "53/UDP", "9000/SCTP"}, []ep{local, remote}),
		mk("nodeport", "10.96.210.2", []string{"80"}, []ep{local, remote}, nodePort(30080)),
		mk("lb-ranges", "10.96.210.3", []string{"80"}, []ep{remote}, nodePort(30081), loadBalancer("198.51.100.201", "198.51.100.0/25")),
		mk("lb-open", "10.96.210.4", []string{"80"}, []ep{remote}, nodePort(30082), loadBalancer("198.51.100.202", "0.0.0.0/0")),
		mk("external-ip", "10.96.210.5", []string{"80"}, []ep{local}, externalIPs("198.51.100.203")),
		mk("etp-local", "10.96.210.6", []string{"80"}, []ep{local, remote}, nodePort(30083), loadBalancer("198.51.100.204"), etpLocal(30500)),
		mk("etp-local-remote", "10.96.210.7", []string{"80"}, []ep{remote}, nodePort(30084), loadBalancer("198.51.100.205"), etpLocal(30501)),
		mk("itp-local", "10.96.210.8", []string{"80"}, []ep{remote}, itpLocal()),
		mk("affinity", "10.96.210.9", []string{"80"}, []ep{local, remote}, nodePort(30085), affinity(600)),
		mk("no-endpoints", "10.96.210.10", []string{"80"}, nil),
		mk("terminating", "10.96.210.11", []string{"80"}, []ep{local + ",terminating", remote + ",terminating"}),
		mk("not-ready", "10.96.210.12", []string{"80"}, []ep{local, remote + ",notready"}),
	}
}

// createParityService creates s, then its load balancer status (the
// apiserver ignores status on create) and its slice.
func createParityService(ctx context.Context, c kubernetes.Interface, s paritySvc) error {
	created, err := c.CoreV1().Services(s.svc.Namespace).Create(ctx, s.svc, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if len(s.svc.Status.LoadBalancer.Ingress) > 0 {
		created.Status = s.svc.Status
		if _, err := c.CoreV1().Services(s.svc.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	_, err = c.DiscoveryV1().EndpointSlices(s.slice.Namespace).Create(ctx, s.slice, metav1.CreateOptions{})
	return err
}
