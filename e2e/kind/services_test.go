//go:build kind

package kind

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

// testDaemonSetReady: kproxy runs and is Ready on all three nodes, and the
// kubelet really probes it: /livez and /healthz were asked and said 200
// (kproxy counts the answers in kubeproxy_proxy_{livez,healthz}_total).
func testDaemonSetReady(t *testing.T, ctx context.Context) {
	if err := waitDaemonSet(ctx, "kube-system", "kproxy", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, n := range kc.nodes {
		err := eventually(time.Minute, func() error {
			out, err := kc.onNode(n, "curl", "-sf", "http://127.0.0.1:10249/metrics")
			if err != nil {
				return err
			}
			m, err := testrig.ParseMetrics(strings.NewReader(out))
			if err != nil {
				return err
			}
			for _, name := range []string{`kubeproxy_proxy_livez_total{code="200"}`, `kubeproxy_proxy_healthz_total{code="200"}`} {
				if m[name] < 1 {
					return fmt.Errorf("%s: %s = %v", n.name, name, m[name])
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

// testCoreDNS: a pod on every node resolves kubernetes.default through
// CoreDNS's ClusterIP.
func testCoreDNS(t *testing.T, ctx context.Context) {
	for _, n := range kc.nodes {
		out, err := kc.kubectl("exec", "-n", testNS, mustClient(t, ctx, n), "--", "/kproxy-echo", "resolve", "-server", "10.96.0.10:53", "kubernetes.default.svc.cluster.local")
		if err != nil || strings.TrimSpace(out) != "10.96.0.1" {
			t.Errorf("%s: kubernetes.default resolved to %q, %v; want 10.96.0.1", n.name, out, err)
		}
	}
}

// testClusterIP: from a pod on every node, TCP and UDP to the echo
// ClusterIP reach endpoints on both workers.
func testClusterIP(t *testing.T, ctx context.Context) {
	svc, err := kc.getService(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	backends, err := kc.pods(ctx, testNS, "echo")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range kc.nodes {
		client := from{pod: mustClient(t, ctx, n)}
		for _, proto := range []string{"tcp", "udp"} {
			s, err := kc.probe(client, proto, hostPort(svc.Spec.ClusterIP, 80), 40)
			if err != nil {
				t.Fatal(err)
			}
			if s.Answered != s.Sent {
				t.Errorf("%s %s: %s", n.name, proto, s)
			}
			nodesSeen := map[string]bool{}
			for name := range s.By {
				nodesSeen[backends[name]] = true
			}
			if len(nodesSeen) < 2 {
				t.Errorf("%s %s: answered only from nodes %v (endpoints on both workers): %s", n.name, proto, nodesSeen, s)
			}
		}
	}
}

// testNodePortAndExternalIP: the NodePort of every node from outside the
// cluster (TCP and UDP), and the externalIP from outside and from pods.
func testNodePortAndExternalIP(t *testing.T, ctx context.Context) {
	svc, err := kc.getService(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range kc.nodes {
		for i, proto := range []string{"tcp", "udp"} {
			s, err := kc.probe(outsideCluster, proto, hostPort(n.ip, svc.Spec.Ports[i].NodePort), 20)
			if err != nil || s.Answered != s.Sent {
				t.Errorf("NodePort %s %s from outside: %v %v", n.name, proto, s, err)
			}
		}
	}
	ext := hostPort(svc.Spec.ExternalIPs[0], 80)
	for _, f := range []from{outsideCluster, {pod: mustClient(t, ctx, kc.nodes[0])}} {
		s, err := kc.probe(f, "tcp", ext, 20)
		if err != nil || s.Answered != s.Sent {
			t.Errorf("externalIP %s from %s: %v %v", ext, f, s, err)
		}
	}
}

func mustClient(t *testing.T, ctx context.Context, n node) string {
	t.Helper()
	pod, err := kc.clientOn(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// testExternalTrafficPolicyLocal: on the node with the endpoint the client's
// address is kept and only the local endpoint answers; the other nodes drop
// the traffic; the healthCheckNodePort says which is which.
func testExternalTrafficPolicyLocal(t *testing.T, ctx context.Context) {
	svc, err := kc.getService(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kc.pods(ctx, testNS, "local")
	if err != nil || len(pods) != 1 {
		t.Fatalf("local pods: %v %v", pods, err)
	}
	var pod, home string
	for name, nodeName := range pods {
		pod, home = name, nodeName
	}
	for _, n := range kc.nodes {
		addr := hostPort(n.ip, svc.Spec.Ports[0].NodePort)
		s, err := kc.probe(outsideCluster, "tcp", addr, 10)
		if err != nil {
			t.Fatal(err)
		}
		hc := fmt.Sprintf("http://%s/healthz", hostPort(n.ip, svc.Spec.HealthCheckNodePort))
		code, body, _, err := testrig.HTTPGet(kc.netns, hc, 2*time.Second)
		if n.name == home {
			if s.Answered != s.Sent || s.By[pod] != s.Sent || s.Seen[kindGateway] != s.Sent {
				t.Errorf("%s (has the endpoint): want every request answered by %s seeing %s: %s", n.name, pod, kindGateway, s)
			}
			if err != nil || code != 200 || localEndpoints(body) != 1 {
				t.Errorf("%s: healthCheckNodePort: %d %q %v; want 200, 1 local endpoint", n.name, code, body, err)
			}
		} else {
			if s.Answered != 0 {
				t.Errorf("%s (no endpoint): want every request dropped: %s", n.name, s)
			}
			if err != nil || code != 503 {
				t.Errorf("%s: healthCheckNodePort: %d %q %v; want 503", n.name, code, body, err)
			}
		}
	}
}

// localEndpoints reads a healthCheckNodePort answer's localEndpoints.
func localEndpoints(body string) int {
	var answer struct {
		LocalEndpoints int `json:"localEndpoints"`
	}
	if json.Unmarshal([]byte(body), &answer) != nil {
		return -1
	}
	return answer.LocalEndpoints
}

// kindGateway is the outside host's address on the kind network
// (hack/kind-offline/dockerd.sh).
const kindGateway = "198.51.100.1"

// testReadiness: a pod failing its readiness probe stops getting traffic;
// ready again, it gets it back.
func testReadiness(t *testing.T, ctx context.Context) {
	svc, err := kc.getService(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	backends, err := kc.pods(ctx, testNS, "echo")
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	for victim = range backends {
		break
	}
	client := mustClient(t, ctx, kc.workers()[0])
	addr := hostPort(svc.Spec.ClusterIP, 80)
	if _, err := kc.kubectl("exec", "-n", testNS, victim, "--", "/kproxy-echo", "unready"); err != nil {
		t.Fatal(err)
	}
	err = eventually(30*time.Second, func() error {
		s, err := kc.probe(from{pod: client}, "tcp", addr, 40)
		if err == nil && (s.By[victim] > 0 || s.Answered != s.Sent) {
			err = fmt.Errorf("unready %s still answers (or failures): %s", victim, s)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
	if _, err := kc.kubectl("exec", "-n", testNS, victim, "--", "/kproxy-echo", "ready"); err != nil {
		t.Fatal(err)
	}
	err = eventually(30*time.Second, func() error {
		s, err := kc.probe(from{pod: client}, "tcp", addr, 40)
		if err == nil && s.By[victim] == 0 {
			err = fmt.Errorf("ready again, %s gets no traffic: %s", victim, s)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

// testScaleToZero: a Service scaled to zero refuses connections at once
// (kube-proxy's REJECT), and serves again when scaled back.
func testScaleToZero(t *testing.T, ctx context.Context) {
	svc, err := kc.getService(ctx, "zero")
	if err != nil {
		t.Fatal(err)
	}
	addr := hostPort(svc.Spec.ClusterIP, 80)
	client := from{pod: mustClient(t, ctx, kc.workers()[1])}
	scale(t, ctx, "zero", 0)
	err = eventually(30*time.Second, func() error {
		start := time.Now()
		s, err := kc.probe(client, "tcp", addr, 5)
		if err != nil {
			return err
		}
		if s.Errors["connection refused"] != 5 {
			return fmt.Errorf("want 5 refused: %s", s)
		}
		// 5 drops would take 10 s (2 s timeout each); kubectl exec itself
		// takes well under a second.
		if took := time.Since(start); took > 4*time.Second {
			return fmt.Errorf("5 refused probes took %s: not at once", took)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	scale(t, ctx, "zero", 2)
	if err := kc.waitPodsReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	err = eventually(30*time.Second, func() error {
		s, err := kc.probe(client, "tcp", addr, 10)
		if err == nil && s.Answered != s.Sent {
			err = fmt.Errorf("scaled back: %s", s)
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

func scale(t *testing.T, ctx context.Context, name string, replicas int32) {
	t.Helper()
	sc, err := kc.client.AppsV1().Deployments(testNS).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = replicas
	if _, err := kc.client.AppsV1().Deployments(testNS).UpdateScale(ctx, name, sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
