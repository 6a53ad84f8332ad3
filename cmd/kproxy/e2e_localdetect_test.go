package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestE2EDetectLocalInterfaceAndHealthCheckAddresses runs the binary as an
// operator migrating from kube-proxy would: --detect-local-mode
// InterfaceNamePrefix with the node-side pod interface prefix, and
// --nodeport-addresses set to the node's own address. A pod's connection
// to a ClusterIP keeps its source, the outside client's is masqueraded,
// and the Service's healthCheckNodePort answers on the node address but
// not on the node's other address (the pods' gateway on veth0).
func TestE2EDetectLocalInterfaceAndHealthCheckAddresses(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	ctx := t.Context()

	topo, cp, bin := testrig.StartCluster(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 1})
	remote := topo.Node(2).Pods[0]
	testrig.StartEchoServers(t, remote.Netns, remote.Name, remote.IP, []int{8080}, testrig.TCP)
	if err := topo.AddClientRoute(testrig.ServiceCIDR, 1); err != nil {
		t.Fatal(err)
	}
	node, pod := topo.Node(1), topo.Node(1).Pods[0]
	testrig.StartProcess(t, node.Netns, testrig.KproxyArgs(bin, cp, node, "--detect-local-mode=InterfaceNamePrefix",
		"--pod-interface-name-prefix="+testrig.PodVethPrefix, "--nodeport-addresses="+node.IP+"/32")...)

	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: "default"}, Spec: v1.ServiceSpec{
		Type: v1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal,
		Ports: []v1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}}}}
	svc, err := cp.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es := &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "lb-1", Namespace: "default", Labels: map[string]string{discovery.LabelServiceName: "lb"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080), Protocol: ptr(v1.ProtocolTCP)}},
		Endpoints: []discovery.Endpoint{{Addresses: []string{remote.IP}, NodeName: ptr(remote.Node.Name),
			Conditions: discovery.EndpointConditions{Ready: ptr(true)}}}}
	if _, err := cp.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	seen := func(ns string) (string, error) {
		var last error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			reply, err := testrig.ProbeTCP(ns, vip, 2*time.Second)
			if err == nil {
				return reply.SeenIP(), nil
			}
			last = err
		}
		return "", last
	}
	if got, err := seen(pod.Netns); err != nil || got != pod.IP {
		t.Errorf("pod %s to ClusterIP %s: endpoint saw %q (%v), want the pod's own address", pod.IP, vip, got, err)
	}
	if got, err := seen(topo.Client); err != nil || got != node.IP {
		t.Errorf("outside client to ClusterIP %s: endpoint saw %q (%v), want node1's address %s (masqueraded)", vip, got, err, node.IP)
	}
	if out := testrig.Run(t, node.Netns, "iptables-save", "-t", "nat"); !strings.Contains(out, "! -i "+testrig.PodVethPrefix+"+") {
		t.Errorf("no \"! -i %s+\" rule in nat:\n%s", testrig.PodVethPrefix, out)
	}

	hc := int(svc.Spec.HealthCheckNodePort)
	var code int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && code == 0; time.Sleep(200 * time.Millisecond) {
		code, _, _, err = testrig.HTTPGet(topo.Client, fmt.Sprintf("http://%s:%d/", node.IP, hc), 3*time.Second)
	}
	if code != 503 { // no local endpoint
		t.Fatalf("health check node port on %s: HTTP %d (%v), want 503", node.IP, code, err)
	}
	if _, _, _, err := testrig.HTTPGet(pod.Netns, fmt.Sprintf("http://%s:%d/", node.Gateway, hc), 3*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("health check node port on the node's other address %s: %v, want connection refused (not listening there)", node.Gateway, err)
	}
}
