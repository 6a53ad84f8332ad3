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
// among them: this machine's kernel has no IP_VS; ipvs's TestVMUDPConntrack
// runs the same scenarios in its qemu VM, with the same testrig checks.
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

// udp is the UDP Service of these tests as seen from the client pod,
// with its conntrack entries in node1.
func (r *rig) udp() testrig.UDPService {
	return testrig.UDPService{Addr: udpAddr, Client: r.client(), Node: r.node.Netns}
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
