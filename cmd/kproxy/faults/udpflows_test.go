package faults

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kproxy/kproxy/internal/testrig"
)

// udpIP is the ClusterIP of the UDP Service of these tests (port 53 →
// the pods' UDP echo on 8080).
const udpIP = "10.96.53.10"

// TestUDPFlowsAcrossRestart: kproxy restarted while long-lived UDP flows run
// (one socket each, as DNS clients keep). kube-proxy flushes such flows on
// every restart (kubernetes/kubernetes#122740); kproxy must keep the entries
// of flows whose endpoint is still in the Service (they keep their
// endpoint) and delete those of an endpoint that left while it was down
// (they move to a live one).
func TestUDPFlowsAcrossRestart(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	stay, leave := pods[1:3], pods[3]
	r.udpService(ctx, "dns", append(slices.Clone(stay), leave)...)
	r.start(nil)
	r.waitSynced(0)

	flows := r.openUDPFlows(t, func(by map[string]int) bool {
		return by[stay[0]] >= 4 && by[stay[1]] >= 4 && by[leave] >= 2
	})
	if err := r.kp.Stop(); err != nil {
		t.Fatal(err)
	}
	r.udpEndpoints(ctx, "dns", stay...) // the endpoint leaves while kproxy is down
	r.start(nil)
	r.waitSynced(0)

	for _, f := range flows {
		got, err := f.flow.Ask(2 * time.Second)
		switch {
		case err != nil:
			t.Errorf("flow from port %d (was on %s): %v", f.flow.LocalPort(), f.endpoint, err)
		case f.endpoint == leave && got == leave:
			t.Errorf("flow from port %d still reaches %s, which left the Service while kproxy was down", f.flow.LocalPort(), leave)
		case f.endpoint != leave && got != f.endpoint:
			t.Errorf("flow from port %d moved from %s to %s: its conntrack entry was flushed by the restart", f.flow.LocalPort(), f.endpoint, got)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("FIGURE udp-restart: %d UDP flows across a restart: live ones kept their endpoint, those of the endpoint that left moved", len(flows))
}

// TestUDPScaleToZeroAndBack: a UDP client that keeps one socket while its
// Service has no endpoints (its datagrams rejected) is answered again as
// soon as an endpoint is back, not black-holed by the entry made while
// there was none (kube-proxy regressed here in 1.32, #139628).
func TestUDPScaleToZeroAndBack(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pods := r.pods()
	r.udpService(ctx, "dns", pods[1])
	r.start(nil)
	r.waitSynced(0)
	flow, err := testrig.OpenUDPFlow(r.client(), fmt.Sprintf("%s:53", udpIP))
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	if got, err := flow.Ask(2 * time.Second); err != nil || got != pods[1] {
		t.Fatalf("before scaling to zero: %q, %v", got, err)
	}

	r.udpEndpoints(ctx, "dns")
	if err := eventually(10*time.Second, func() error {
		if got, err := flow.Ask(300 * time.Millisecond); err == nil {
			return fmt.Errorf("answered by %s with no endpoints", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The client keeps sending while there is no endpoint, keeping its
	// conntrack entry alive.
	for range 10 {
		_, _ = flow.Ask(100 * time.Millisecond)
	}

	r.udpEndpoints(ctx, "dns", pods[2])
	start := time.Now()
	if err := eventually(10*time.Second, func() error {
		got, err := flow.Ask(300 * time.Millisecond)
		if err == nil && got != pods[2] {
			err = fmt.Errorf("answered by %s, want %s", got, pods[2])
		}
		return err
	}); err != nil {
		t.Fatalf("the same socket after scaling back: %v\n%s", err, r.kp.Tail(20))
	}
	t.Logf("FIGURE udp-zero-and-back: the same UDP socket answered %.1fs after an endpoint came back", time.Since(start).Seconds())
}

// udpFlow is an open flow and the endpoint it reached first.
type udpFlow struct {
	flow     *testrig.UDPFlow
	endpoint string
}

// openUDPFlows opens flows to the UDP Service from the client pod until
// enough (by endpoint reached) holds; they are closed when the test ends.
func (r *rig) openUDPFlows(t *testing.T, enough func(map[string]int) bool) []udpFlow {
	t.Helper()
	var flows []udpFlow
	by := map[string]int{}
	for len(flows) < 80 && !enough(by) {
		f, err := testrig.OpenUDPFlow(r.client(), fmt.Sprintf("%s:53", udpIP))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		name, err := f.Ask(2 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		flows = append(flows, udpFlow{f, name})
		by[name]++
	}
	if !enough(by) {
		t.Fatalf("80 flows did not spread enough over the endpoints: %v", by)
	}
	return flows
}

// udpService creates the Service dns (udpIP:53/UDP → 8080) with the given
// endpoints.
func (r *rig) udpService(ctx context.Context, name string, podIPs ...string) {
	r.t.Helper()
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.ns},
		Spec: v1.ServiceSpec{ClusterIP: udpIP, ClusterIPs: []string{udpIP},
			Ports: []v1.ServicePort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP, TargetPort: intstr.FromInt32(echoPort)}}},
	}
	if _, err := r.cp.Client.CoreV1().Services(r.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	r.udpEndpoints(ctx, name, podIPs...)
}

// udpEndpoints replaces the UDP Service's EndpointSlice.
func (r *rig) udpEndpoints(ctx context.Context, name string, podIPs ...string) {
	r.t.Helper()
	if err := r.applySlice(ctx, name, v1.ProtocolUDP, "dns", podIPs...); err != nil {
		r.t.Fatal(err)
	}
}

// waitSynced waits until the running kproxy has made more than after syncs
// and has no change pending.
func (r *rig) waitSynced(after float64) {
	r.t.Helper()
	r.waitMetric(`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`, func(v float64) bool { return v > after }, 30*time.Second)
	r.waitMetric(`kubeproxy_sync_proxy_rules_service_changes_pending`, func(v float64) bool { return v == 0 }, 10*time.Second)
}

// eventually retries f every 100ms until it succeeds or within passes.
func eventually(within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
