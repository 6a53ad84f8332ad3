package faults

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kproxy/kproxy/internal/testrig"
)

// udpMode is one proxy mode the UDP conntrack tests run in. ipvs is not
// among them: this machine's kernel has no IP_VS, it runs only in the qemu
// VM, which these control-plane tests do not use.
type udpMode struct {
	name string
	args []string
	// listener: kproxy's own listener answers the flows (userspace mode),
	// so their conntrack entries reply from a proxy port, not an endpoint.
	listener bool
	// newPorts: the listeners get kernel-chosen ports, other ones after a
	// restart (userspace mode without --proxy-port-range).
	newPorts bool
}

// The userspace mode's proxy ports in these tests: with a range instead of
// kernel-chosen ports the UDP listener gets its port back after a restart,
// so the entries of its flows can be kept.
const (
	udpProxyPortBase = 34000
	udpProxyPortSize = 100
)

var udpProxyPorts = fmt.Sprintf("%d-%d", udpProxyPortBase, udpProxyPortBase+udpProxyPortSize-1)

var udpModes = []udpMode{
	{name: "iptables"},
	{name: "nftables", args: []string{"--proxy-mode=nftables"}},
	{name: "userspace", args: []string{"--proxy-mode=userspace", "--proxy-port-range=" + udpProxyPorts}, listener: true},
	{name: "userspace-kernel-ports", args: []string{"--proxy-mode=userspace"}, listener: true, newPorts: true},
}

// isProxyPort reports whether p may be one of the mode's proxy ports.
func (m udpMode) isProxyPort(p uint16) bool {
	if m.newPorts {
		return p != echoPort
	}
	return p >= udpProxyPortBase && p < udpProxyPortBase+udpProxyPortSize
}

// forEachUDPMode runs test as one subtest per mode, each on a rig of its own.
func forEachUDPMode(t *testing.T, test func(*testing.T, udpMode)) {
	for _, m := range udpModes {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

// udpMark is the conntrack mark the tests put on the entries they follow;
// nothing in the rig or in kproxy sets conntrack marks.
const udpMark = 0x5d

// markFlows marks the conntrack entry of every flow (see
// testrig.MarkConntrack) and returns the entries by the flow's port.
func (r *rig) markFlows(t *testing.T, m udpMode, flows []udpFlow) map[int]testrig.ConntrackEntry {
	t.Helper()
	out := map[int]testrig.ConntrackEntry{}
	for _, f := range flows {
		e, ok := r.flowEntry(t, f.flow)
		if !ok {
			t.Fatalf("flow from port %d (on %s) has no conntrack entry", f.flow.LocalPort(), f.endpoint)
		}
		if !m.listener && e.ReplySrc.Addr().String() != f.endpoint {
			t.Fatalf("flow on %s: conntrack entry %v", f.endpoint, e)
		}
		if err := testrig.MarkConntrack(r.node.Netns, e, udpMark, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		e.Mark = udpMark
		out[f.flow.LocalPort()] = e
	}
	return out
}

// flowEntry is the node's conntrack entry of flow, if there is one (a
// second one fails the test).
func (r *rig) flowEntry(t *testing.T, flow *testrig.UDPFlow) (testrig.ConntrackEntry, bool) {
	t.Helper()
	entries, err := testrig.UDPConntrack(r.node.Netns, udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	var found []testrig.ConntrackEntry
	for _, e := range entries {
		if int(e.Src.Port()) == flow.LocalPort() {
			found = append(found, e)
		}
	}
	if len(found) > 1 {
		t.Fatalf("flow from port %d has %d conntrack entries: %v", flow.LocalPort(), len(found), found)
	}
	if len(found) == 0 {
		return testrig.ConntrackEntry{}, false
	}
	return found[0], true
}

// syncUnrelatedChange creates a TCP Service and waits for the sync that
// programs it (and its conntrack cleanup).
func (r *rig) syncUnrelatedChange(ctx context.Context) {
	r.t.Helper()
	m, err := r.metrics()
	if err != nil {
		r.t.Fatal(err)
	}
	syncs := m[`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`]
	pods := r.pods()
	if err := r.service(ctx, "unrelated", "10.96.77.1", pods[0]); err != nil {
		r.t.Fatal(err)
	}
	r.waitAnswer("10.96.77.1", pods[:1], 10*time.Second)
	r.waitSynced(syncs)
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
		f, err := testrig.OpenUDPFlow(r.client(), udpAddr.String())
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
