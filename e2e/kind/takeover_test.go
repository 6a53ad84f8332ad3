//go:build kind

package kind

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testKubeProxyBaseline: the cluster as kubeadm would make it, with upstream
// kube-proxy v1.37.2 as its DaemonSet; CoreDNS and the workloads come up
// behind it.
func testKubeProxyBaseline(t *testing.T, ctx context.Context) {
	deployKubeProxy(t, ctx)
	if out, err := kc.kubectl("-n", "kube-system", "rollout", "status", "deploy/coredns", "--timeout=180s"); err != nil {
		t.Fatalf("coredns: %v\n%s", err, out)
	}
	if err := kc.ensureWorkloads(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := kc.getService(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	s, err := kc.probe(from{pod: mustClient(t, ctx, kc.workers()[0])}, "tcp", hostPort(svc.Spec.ClusterIP, 80), 10)
	if err != nil || s.Answered != 10 {
		t.Fatalf("ClusterIP behind kube-proxy: %v %v", s, err)
	}
}

func deployKubeProxy(t *testing.T, ctx context.Context) {
	t.Helper()
	// Where the apiserver is without a Service (deploy/kind-up.sh makes the
	// same ConfigMap for kproxy).
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kproxy-apiserver", Namespace: "kube-system"},
		Data:       map[string]string{"host": kc.controlPlane().name, "port": "6443"},
	}
	if _, err := kc.client.CoreV1().ConfigMaps("kube-system").Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if out, err := kc.kubectl("apply", "-f", filepath.Join(repoRoot(), "e2e", "kind", "testdata", "kube-proxy.yaml")); err != nil {
		t.Fatalf("apply kube-proxy: %v\n%s", err, out)
	}
	if err := waitDaemonSet(ctx, "kube-system", "kube-proxy", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// testTakeoverFromKubeProxy: kproxy deployed where kube-proxy runs, then
// kube-proxy's DaemonSet deleted, under constant connections: none fails.
func testTakeoverFromKubeProxy(t *testing.T, ctx context.Context) {
	loads := startLoads(t, ctx)
	kc.deploy(t, "iptables")
	if out, err := kc.kubectl("-n", "kube-system", "delete", "daemonset", "kube-proxy", "--wait=true"); err != nil {
		t.Errorf("delete kube-proxy: %v\n%s", err, out)
	}
	waitNoPods(t, ctx, "k8s-app=kube-proxy")
	time.Sleep(5 * time.Second) // traffic after kube-proxy is gone counts too
	requireNoFailures(t, loads)
}

// testWayBackToKubeProxy: kube-proxy deployed again, then kproxy's
// DaemonSet deleted, under constant connections: none fails.
func testWayBackToKubeProxy(t *testing.T, ctx context.Context) {
	loads := startLoads(t, ctx)
	deployKubeProxy(t, ctx)
	if out, err := kc.kubectl("-n", "kube-system", "delete", "daemonset", "kproxy", "--wait=true"); err != nil {
		t.Errorf("delete kproxy: %v\n%s", err, out)
	}
	waitNoPods(t, ctx, "app.kubernetes.io/name=kproxy")
	time.Sleep(5 * time.Second)
	requireNoFailures(t, loads)
}

func waitNoPods(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	err := eventually(2*time.Minute, func() error {
		pods, err := kc.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(pods.Items) > 0 {
			err = apierrors.NewBadRequest(pods.Items[0].Name + " still exists")
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}
