package deploy

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kproxy/kproxy/internal/testrig"
)

// shared is one topology (3 nodes, 2 pods each) and control plane for the
// kernel tests of this package; each test uses its own nodes and API
// namespace: TestDaemonSetPod node1, TestTakeOver node2 and node3.
var shared struct {
	topo *testrig.Topology
	cp   *testrig.ControlPlane
}

func TestMain(m *testing.M) {
	code := testrig.Main(m, func(s *testrig.MainScope) error {
		topo, err := testrig.BuildTopology(s, testrig.TopologyOptions{Nodes: 3, PodsPerNode: 2})
		if err != nil {
			return err
		}
		cp, err := testrig.StartControlPlaneIn(s, topo)
		if errors.Is(err, testrig.ErrUpstreamMissing) && !testrig.KernelRequired() {
			return nil // kernel tests skip
		}
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cp.CreateNodes(ctx, topo); err != nil {
			return err
		}
		shared.topo, shared.cp = topo, cp
		return nil
	})
	os.Exit(code)
}

// cluster returns the shared topology and control plane, or skips.
func cluster(t *testing.T) (*testrig.Topology, *testrig.ControlPlane) {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.RequireUpstream(t)
	if shared.cp == nil {
		t.Fatal("the shared control plane did not start (see TestMain output)")
	}
	return shared.topo, shared.cp
}

// applyFile runs "kubectl apply --server-side" (optionally as a server-side
// dry run) on rendered manifests.
func applyFile(t *testing.T, cp *testrig.ControlPlane, data []byte, dryRun bool) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "manifests.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"apply", "--server-side", "--field-manager=kproxy-deploy-test", "-f", path}
	if dryRun {
		args = append(args, "--dry-run=server")
	}
	return cp.Kubectl(args...)
}

// webService creates namespace ns (kept: no controller-manager deletes
// namespaces), a ClusterIP Service "web" port 80 → 8080/TCP and its
// EndpointSlice with backends; both are deleted when the test ends.
func webService(t *testing.T, cp *testrig.ControlPlane, ns string, backends ...*testrig.Pod) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	_, err := cp.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	svc, err := cp.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP,
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, webSlice(ns, backends), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.Client.DiscoveryV1().EndpointSlices(ns).Delete(context.Background(), "web-1", metav1.DeleteOptions{})
		_ = cp.Client.CoreV1().Services(ns).Delete(context.Background(), "web", metav1.DeleteOptions{})
	})
	return svc
}

// setBackends replaces the endpoints of the Service made by webService.
func setBackends(t *testing.T, cp *testrig.ControlPlane, ns string, backends ...*testrig.Pod) {
	t.Helper()
	ctx := context.Background()
	cur, err := cp.Client.DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := webSlice(ns, backends)
	next.ResourceVersion = cur.ResourceVersion
	if _, err := cp.Client.DiscoveryV1().EndpointSlices(ns).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func webSlice(ns string, backends []*testrig.Pod) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: ns, Labels: map[string]string{
			discovery.LabelServiceName: "web",
			discovery.LabelManagedBy:   "kproxy-deploy-test",
		}},
		AddressType: discovery.AddressTypeIPv4,
		Ports: []discovery.EndpointPort{{
			Name: ptr("http"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP),
		}},
	}
	for _, p := range backends {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{
			Addresses:  []string{p.IP},
			Conditions: discovery.EndpointConditions{Ready: ptr(true)},
			NodeName:   ptr(p.Node.Name),
		})
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// waitHTTP200 polls url from ns until it answers 200 (bounded), failing early
// if proc exits.
func waitHTTP200(t *testing.T, ns, url string, proc *testrig.Process, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		code, body, _, err := testrig.HTTPGet(ns, url, 2*time.Second)
		if err == nil && code == http.StatusOK {
			return
		}
		if exited, werr := proc.Exited(); exited {
			t.Fatalf("%s exited (%v) before %s answered 200; log tail:\n%s", proc.Name, werr, url, proc.Tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %v: %d %q %v; %s log tail:\n%s", url, limit, code, body, err, proc.Name, proc.Tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAnsweredBy probes vip from ns until want answers (bounded).
func waitAnsweredBy(t *testing.T, ns, vip, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r, err := testrig.ProbeTCP(ns, vip, 2*time.Second)
		if err == nil && r.Name == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %s from %s within %v (last: %+v, %v)", want, vip, ns, limit, r, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
