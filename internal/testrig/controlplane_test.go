package testrig

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func TestControlPlane(t *testing.T) {
	RequireRoot(t)
	CheckRootNetnsUnchanged(t)
	topo := NewTopology(t, TopologyOptions{Nodes: 2, PodsPerNode: 1})
	start := time.Now()
	cp := StartControlPlane(t, topo)
	t.Logf("control plane ready in %v (apiserver pid %d)", time.Since(start).Round(time.Millisecond), cp.APIServerPID())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cp.CreateNodes(ctx, topo); err != nil {
		t.Fatal(err)
	}
	node, err := cp.Client.CoreV1().Nodes().Get(ctx, "node2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Spec.PodCIDR != "10.244.2.0/24" || node.Status.Addresses[0].Address != "198.51.100.12" {
		t.Errorf("node2: podCIDR %s, addresses %v", node.Spec.PodCIDR, node.Status.Addresses)
	}

	pod := topo.Node(1).Pods[0]
	svc, eps := webService(pod.IP)
	svc, err = cp.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svc.Spec.ClusterIP, "10.96.") {
		t.Errorf("clusterIP %s not in %s", svc.Spec.ClusterIP, ServiceCIDR)
	}
	if _, err := cp.Client.DiscoveryV1().EndpointSlices("default").Create(ctx, eps, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// kube-proxy's credentials can list what kube-proxy watches, but not write.
	kp, err := kubernetes.NewForConfig(cp.KubeProxyConfig())
	if err != nil {
		t.Fatal(err)
	}
	slices, err := kp.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Items) != 1 || slices.Items[0].Endpoints[0].Addresses[0] != pod.IP {
		t.Errorf("endpoint slices as kube-proxy: %+v", slices.Items)
	}
	if _, err := kp.CoreV1().Services("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list services as kube-proxy: %v", err)
	}
	if err := kp.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err == nil {
		t.Errorf("kube-proxy could delete a service")
	}

	// The kubeconfig files work from inside a node namespace (upstream kubectl).
	out, err := Exec(topo.Node(2).Netns, cp.bin+"/kubectl", "--kubeconfig="+cp.KubeProxyKubeconfig, "get", "endpointslices", "-A", "-o", "name")
	if err != nil || !strings.Contains(out, "web-1") {
		t.Errorf("kubectl from node2 as kube-proxy: %q, %v", out, err)
	}

	// Restart keeps the data and the credentials.
	oldPID := cp.APIServerPID()
	start = time.Now()
	if err := cp.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver restart in %v", time.Since(start).Round(time.Millisecond))
	if cp.APIServerPID() == oldPID {
		t.Errorf("restart kept pid %d", oldPID)
	}
	got, err := cp.Client.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || got.Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("service after restart: %v, %v", got, err)
	}
}

func webService(podIP string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	eps := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "testrig"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{podIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To("node1"),
		}},
	}
	return svc, eps
}
