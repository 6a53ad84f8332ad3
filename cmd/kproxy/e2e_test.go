package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestE2EControlPlane runs the kproxy binary against a real etcd and
// kube-apiserver in a two-node namespace topology and checks, through
// real traffic and the kernel's ruleset, that it follows Service and
// EndpointSlice changes; that after a random sequence of changes the
// partially synced rules equal a fresh full render; that /healthz,
// /metrics and the health check node ports answer like kube-proxy's; that
// an invalid Service is skipped and counted; that SIGTERM leaves the rules
// and --cleanup removes them. Needs root, iproute2, iptables and the
// upstream binaries (hack/build-upstream.sh); about a minute.
func TestE2EControlPlane(t *testing.T) {
	ctx := t.Context()
	e, scratch := startE2E(t, "")
	topo, cp, bin := e.topo, e.cp, e.bin

	client := topo.Client
	podNS := e.node.Pods[1].Netns // a pod on the proxied node
	nodeIP := e.node.IP
	svcs := cp.Client.CoreV1().Services("default")
	slicesAPI := cp.Client.DiscoveryV1().EndpointSlices("default")
	all := topo.Pods()
	name := func(p *testrig.Pod) string { return p.Name }

	t.Run("ClusterIP and NodePort follow changes", func(t *testing.T) {
		svc := mustCreateService(t, svcs, service("web", v1.ServiceTypeNodePort, tcpPort("http", 80)))
		if _, err := slicesAPI.Create(ctx, slice("web", "web-1", readyEndpoints(all[0], all[2])...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitConverged(ctx, scratch, "web created")
		vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
		np := net.JoinHostPort(nodeIP, strconv.Itoa(int(svc.Spec.Ports[0].NodePort)))
		want := []string{name(all[0]), name(all[2])}
		t.Logf("ClusterIP %s from %s: %v", vip, podNS, probeExactly(t, podNS, testrig.TCP, vip, want, 30))
		t.Logf("NodePort %s from client: %v", np, probeExactly(t, client, testrig.TCP, np, want, 30))

		setEndpoints(t, slicesAPI, "web-1", readyEndpoints(all[3]))
		e.waitConverged(ctx, scratch, "web endpoints moved")
		probeNames(t, podNS, testrig.TCP, vip, []string{name(all[3])}, 5)
		probeNames(t, client, testrig.TCP, np, []string{name(all[3])}, 5)

		if err := svcs.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := slicesAPI.Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitConverged(ctx, scratch, "web deleted")
		t.Logf("ClusterIP after delete: %v", expectNoAnswer(t, podNS, vip))
		t.Logf("NodePort after delete: %v", expectNoAnswer(t, client, np))
	})

	t.Run("health check node port", func(t *testing.T) {
		s := service("lb", v1.ServiceTypeLoadBalancer, tcpPort("http", 80))
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		svc := mustCreateService(t, svcs, s)
		hc := svc.Spec.HealthCheckNodePort
		if hc == 0 {
			t.Fatal("apiserver allocated no healthCheckNodePort")
		}
		if _, err := slicesAPI.Create(ctx, slice("lb", "lb-1", readyEndpoints(all[0], all[2])...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitConverged(ctx, scratch, "lb created")
		url := fmt.Sprintf("http://%s:%d/", nodeIP, hc)
		waitHealthCheck(t, client, url, 200, 1)
		setEndpoints(t, slicesAPI, "lb-1", readyEndpoints(all[2]))
		e.waitConverged(ctx, scratch, "lb endpoint gone from node1")
		waitHealthCheck(t, client, url, 503, 0)
		mustDelete(t, svcs.Delete(ctx, "lb", metav1.DeleteOptions{}), slicesAPI.Delete(ctx, "lb-1", metav1.DeleteOptions{}))
		e.waitConverged(ctx, scratch, "lb deleted")
	})

	t.Run("invalid Service is skipped and counted", func(t *testing.T) {
		before, err := e.metrics()
		if err != nil {
			t.Fatal(err)
		}
		bad := createInvalidService(t, cp, "bad")
		if _, err := slicesAPI.Create(ctx, slice(bad.Name, bad.Name+"-1", readyEndpoints(all[1])...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		good := mustCreateService(t, svcs, service("good", v1.ServiceTypeClusterIP, tcpPort("http", 80)))
		if _, err := slicesAPI.Create(ctx, slice("good", "good-1", readyEndpoints(all[2])...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitConverged(ctx, scratch, "invalid and good Services")
		after, err := e.metrics()
		if err != nil {
			t.Fatal(err)
		}
		key := `kproxy_invalid_objects_total{kind="Service"}`
		if after[key] <= before[key] {
			t.Errorf("%s = %v, was %v: the invalid Service was not counted", key, after[key], before[key])
		}
		if !strings.Contains(e.kp.Log(), "Skipping invalid parts of object") || !strings.Contains(e.kp.Log(), "default/"+bad.Name) {
			t.Errorf("no log line about the invalid Service default/%s", bad.Name)
		}
		if !strings.Contains(e.kp.Log(), `192.0.2.010`) {
			t.Errorf("the log line does not name the bad externalIP")
		}
		probeNames(t, podNS, testrig.TCP, net.JoinHostPort(good.Spec.ClusterIP, "80"), []string{name(all[2])}, 3)
		// The invalid part is dropped; the rest of the Service still works.
		probeNames(t, podNS, testrig.TCP, net.JoinHostPort(bad.Spec.ClusterIP, "80"), []string{name(all[1])}, 3)
	})

	t.Run("random changes: incremental equals full", func(t *testing.T) {
		seed := uint64(time.Now().UnixNano())
		if s := os.Getenv("KPROXY_E2E_SEED"); s != "" {
			seed, _ = strconv.ParseUint(s, 10, 64)
		}
		t.Logf("seed %d (rerun with KPROXY_E2E_SEED=%d)", seed, seed)
		r := newRandomizer(t, cp, seed, all)
		for i := 1; i <= 30; i++ {
			r.step(ctx, i)
			if i%10 == 0 {
				e.waitConverged(ctx, scratch, fmt.Sprintf("after %d random changes (seed %d)", i, seed))
				r.checkTraffic(podNS)
			}
		}
	})

	t.Run("healthz and metrics", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/livez"} {
			code, body, hdr, err := testrig.HTTPGet(e.node.Netns, "http://"+testrig.KproxyHealthzAddr+path, 3*time.Second)
			if err != nil || code != 200 || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: %d %q %v", path, code, body, err)
			}
			var b map[string]any
			if err := json.Unmarshal([]byte(body), &b); err != nil {
				t.Fatalf("%s body %q: %v", path, body, err)
			}
			if _, ok := b["lastUpdated"]; !ok {
				t.Errorf("%s body lacks lastUpdated: %s", path, body)
			}
			if path == "/healthz" && b["nodeEligible"] != true {
				t.Errorf("/healthz nodeEligible = %v: %s", b["nodeEligible"], body)
			}
		}
		// A Node marked for deletion makes /healthz fail, not /livez.
		setTaint := func(on bool) {
			t.Helper()
			n, err := cp.Client.CoreV1().Nodes().Get(ctx, e.node.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n.Spec.Taints = nil
			if on {
				n.Spec.Taints = []v1.Taint{{Key: "ToBeDeletedByClusterAutoscaler", Effect: v1.TaintEffectNoSchedule}}
			}
			if _, err := cp.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setTaint(true)
		waitHTTP(t, e.node.Netns, "http://"+testrig.KproxyHealthzAddr+"/healthz", 503, `"nodeEligible": false`)
		waitHTTP(t, e.node.Netns, "http://"+testrig.KproxyHealthzAddr+"/livez", 200, `"lastUpdated"`)
		setTaint(false)
		waitHTTP(t, e.node.Netns, "http://"+testrig.KproxyHealthzAddr+"/healthz", 200, `"nodeEligible": true`)

		m, err := e.metrics()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{
			`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`,
			`kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"}`,
			`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`,
			`kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}`,
			`kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}`,
			`kubeproxy_sync_proxy_rules_iptables_total{ip_family="IPv4",table="nat"}`,
			`kubeproxy_sync_proxy_rules_service_changes_total`,
			`kubeproxy_sync_proxy_rules_endpoint_changes_total`,
			`kubeproxy_proxy_healthz_total{code="200"}`,
			`kubeproxy_proxy_livez_total{code="200"}`,
			`kubeproxy_proxy_healthz_total{code="503"}`,
			`go_goroutines`,
			`process_resident_memory_bytes`,
			`kproxy_invalid_objects_total{kind="Service"}`,
		} {
			if v, ok := m[k]; !ok || v <= 0 {
				t.Errorf("metric %s = %v (present %v), want > 0", k, v, ok)
			}
		}
		for k, v := range m {
			if strings.HasPrefix(k, "kproxy_sync_failures_total") || strings.HasPrefix(k, "kubeproxy_sync_proxy_rules_iptables_restore_failures_total") {
				if v != 0 {
					t.Errorf("%s = %v, want 0", k, v)
				}
			}
		}
	})

	t.Run("SIGTERM leaves the rules, --cleanup removes them", func(t *testing.T) {
		keep := mustCreateService(t, svcs, service("keep", v1.ServiceTypeClusterIP, tcpPort("http", 80)))
		if _, err := slicesAPI.Create(ctx, slice("keep", "keep-1", readyEndpoints(all[2])...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitConverged(ctx, scratch, "keep created")
		vip := net.JoinHostPort(keep.Spec.ClusterIP, "80")
		before, err := testrig.SavedOwnRules(e.node.Netns)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.kp.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-e.kp.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("kproxy did not exit within 15s of SIGTERM")
		}
		if _, werr := e.kp.Exited(); werr != nil {
			t.Errorf("kproxy exit after SIGTERM: %v\n%s", werr, e.kp.Tail(20))
		}
		after, err := testrig.SavedOwnRules(e.node.Netns)
		if err != nil {
			t.Fatal(err)
		}
		if after != before || !strings.Contains(after, "-A KUBE-SERVICES") {
			t.Fatalf("rules changed after SIGTERM:\n%s", testrig.LineDiff(before, after))
		}
		probeNames(t, podNS, testrig.TCP, vip, []string{name(all[2])}, 2)

		for i := 1; i <= 2; i++ { // idempotent
			if out, err := testrig.Exec(e.node.Netns, bin, "--cleanup", "--conntrack-max-per-core=0"); err != nil {
				t.Fatalf("kproxy --cleanup (run %d): %v\n%s", i, err, out)
			}
		}
		if left := leftovers(t, e.node.Netns); left != "" {
			t.Errorf("left after --cleanup:\n%s", left)
		}
		t.Logf("ClusterIP after cleanup: %v", expectNoAnswer(t, podNS, vip))
	})
}

// leftovers lists every KUBE- and KPROXY- chain and rule in ns except
// kubelet's.
func leftovers(t *testing.T, ns string) string {
	t.Helper()
	var left []string
	for _, table := range []string{"filter", "nat", "mangle"} {
		out := testrig.Run(t, ns, "iptables-save", "-t", table)
		for _, l := range strings.Split(out, "\n") {
			if testrig.MentionsOwnChain(l) && !strings.Contains(l, "KUBE-FIREWALL") && !strings.Contains(l, "KUBE-KUBELET-CANARY") {
				left = append(left, table+": "+l)
			}
		}
	}
	return strings.Join(left, "\n")
}

func mustDelete(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
}

func mustCreateService(t *testing.T, c serviceClient, s *v1.Service) *v1.Service {
	t.Helper()
	got, err := c.Create(t.Context(), s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Service %s: %v", s.Name, err)
	}
	return got
}

// setEndpoints replaces the endpoints of an existing EndpointSlice.
func setEndpoints(t *testing.T, c sliceClient, name string, eps []discovery.Endpoint) {
	t.Helper()
	es, err := c.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	es.Endpoints = eps
	if _, err := c.Update(t.Context(), es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createInvalidService stores a Service with an externalIP the
// apiserver's validation rejects today ("192.0.2.010", leading zero) but
// older apiservers accepted, as such objects can still be in etcd after an
// upgrade. The apiserver would refuse to create it, so the test creates a
// valid Service through the API and then overwrites its stored form in
// etcd (through etcd's JSON gateway inside the net namespace); the
// apiserver decodes without validating and its watch delivers the object.
func createInvalidService(t *testing.T, cp *testrig.ControlPlane, name string) *v1.Service {
	t.Helper()
	ctx := t.Context()
	svc := mustCreateService(t, cp.Client.CoreV1().Services("default"), service(name, v1.ServiceTypeClusterIP, tcpPort("http", 80)))
	bad := svc.DeepCopy()
	bad.ResourceVersion = ""
	bad.Spec.ExternalIPs = []string{"192.0.2.010"}
	bad.APIVersion, bad.Kind = "v1", "Service"
	var buf bytes.Buffer
	if err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Encode(bad, &buf); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{
		"key":   base64.StdEncoding.EncodeToString([]byte("/registry/services/specs/default/" + name)),
		"value": base64.StdEncoding.EncodeToString(buf.Bytes()),
	})
	resp, err := testrig.HTTPClient(cp.Netns, 5*time.Second).Post("http://127.0.0.1:2379/v3/kv/put", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("etcd put: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("etcd put: HTTP %d", resp.StatusCode)
	}
	// Wait until the apiserver serves the stored form.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := cp.Client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && len(got.Spec.ExternalIPs) == 1 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the apiserver does not serve the Service written to etcd: %v %+v", err, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHealthCheck polls a health check node port until it answers code
// with localEndpoints n (kube-proxy's body and weight header).
func waitHealthCheck(t *testing.T, ns, url string, code, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		got, body, hdr, err := testrig.HTTPGet(ns, url, 3*time.Second)
		if err == nil {
			var b struct {
				Service struct {
					Namespace, Name string
				}
				LocalEndpoints      int
				ServiceProxyHealthy bool
			}
			jerr := json.Unmarshal([]byte(body), &b)
			if got == code && jerr == nil && b.LocalEndpoints == n && b.ServiceProxyHealthy &&
				b.Service.Name == "lb" && hdr.Get("X-Load-Balancing-Endpoint-Weight") == strconv.Itoa(n) {
				return
			}
			last = fmt.Sprintf("HTTP %d %s weight %q", got, body, hdr.Get("X-Load-Balancing-Endpoint-Weight"))
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: want HTTP %d with localEndpoints %d; last: %s", url, code, n, last)
}

// Object builders.

func service(name string, typ v1.ServiceType, ps ...v1.ServicePort) *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       v1.ServiceSpec{Type: typ, Ports: ps},
	}
}

func tcpPort(name string, port int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}
}

func udpPort(name string, port int32) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolUDP}
}

func slice(svc, name string, eps ...discovery.Endpoint) *discovery.EndpointSlice {
	p := int32(8080)
	tcp, udp := v1.ProtocolTCP, v1.ProtocolUDP
	http, dns := "http", "dns"
	return &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discovery.LabelServiceName: svc}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discovery.EndpointPort{{Name: &http, Port: &p, Protocol: &tcp}, {Name: &dns, Port: &p, Protocol: &udp}},
	}
}

func endpoint(p *testrig.Pod, ready, serving, terminating bool) discovery.Endpoint {
	node := p.Node.Name
	return discovery.Endpoint{
		Addresses:  []string{p.IP},
		NodeName:   &node,
		Conditions: discovery.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
	}
}

func readyEndpoints(pods ...*testrig.Pod) []discovery.Endpoint {
	var out []discovery.Endpoint
	for _, p := range pods {
		out = append(out, endpoint(p, true, true, false))
	}
	return out
}

// serviceClient is the part of the typed Service client the tests use.
type serviceClient interface {
	Create(context.Context, *v1.Service, metav1.CreateOptions) (*v1.Service, error)
}

// sliceClient is the part of the typed EndpointSlice client setEndpoints uses.
type sliceClient interface {
	Get(context.Context, string, metav1.GetOptions) (*discovery.EndpointSlice, error)
	Update(context.Context, *discovery.EndpointSlice, metav1.UpdateOptions) (*discovery.EndpointSlice, error)
}

// waitHTTP polls url from ns until it answers code with a body containing
// substr.
func waitHTTP(t *testing.T, ns, url string, code int, substr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		got, body, _, err := testrig.HTTPGet(ns, url, 3*time.Second)
		if err == nil && got == code && strings.Contains(body, substr) {
			return
		}
		last = fmt.Sprintf("HTTP %d %q %v", got, body, err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: want HTTP %d with %q; last: %s", url, code, substr, last)
}
