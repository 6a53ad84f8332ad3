package ipvs

// Guest side of TestVMUDPConntrack: kproxy --proxy-mode=ipvs in the VM's
// root namespace (the VM is the node), UDP echo endpoints in pod
// namespaces, long-lived UDP flows from a client namespace. The checks
// are testrig's, shared with cmd/kproxy/faults' UDP tests.
//
// What IPVS adds: with net/ipv4/vs/conntrack=1 every IPVS connection has
// a conntrack entry replying from the real server, so kproxy's UDP
// clean-up sees the same entries as in the iptables mode. A deleted UDP
// real server (expire_nodest_conn=1) re-schedules its connection on the
// next datagram only if that datagram found no confirmed entry: an entry
// left behind makes IPVS drop the datagram instead.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kproxy/kproxy/internal/testrig"
)

const (
	udpDNSIP   = "10.96.53.10" // the restart scenario's Service
	udpZeroIP  = "10.96.53.11" // the scale-to-zero scenario's Service
	udpOtherIP = "10.96.77.1"  // the unrelated TCP Service
	// udpEchoPort is the pods' UDP echo, makeService's target of port 53.
	udpEchoPort = 8053
	// udpMark is the conntrack mark the test puts on the entries it
	// follows; nothing in the VM sets conntrack marks.
	udpMark = 0x5d
	// guestNetns is the VM's root namespace, where kproxy translates.
	guestNetns = "/proc/1/ns/net"
)

// udpGuest is the guest's rig: endpoints, client, an API client that may
// change EndpointSlices, and the running kproxy.
type udpGuest struct {
	api    kubernetes.Interface
	pods   []string // pod IPs, also their echo servers' names
	client string
	kp     *testrig.Process
}

func TestGuestUDPConntrack(t *testing.T) {
	requireVM(t)
	if _, err := os.Stat(guestUDPKubeconfig); err != nil {
		t.Skip("no kubeconfig: TestVMUDPConntrack provides one")
	}
	g := newUDPGuest(t)
	ctx := context.Background()
	dns := makeService(udpNamespace, "dns", udpDNSIP, []string{"53/UDP"})
	zero := makeService(udpNamespace, "zero", udpZeroIP, []string{"53/UDP"})
	g.create(t, ctx, dns, g.pods[:3]...)
	g.create(t, ctx, zero, g.pods[3])
	g.start(t)
	g.waitSynced(t, 0)
	// Scale to zero first: it leaves kproxy running, the restart does not.
	t.Run("ScaleToZeroAndBack", func(t *testing.T) { g.scaleToZeroAndBack(t, ctx, zero) })
	t.Run("FlowsAcrossRestart", func(t *testing.T) { g.flowsAcrossRestart(t, ctx, dns) })
}

func newUDPGuest(t *testing.T) *udpGuest {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", guestUDPAdmin)
	if err != nil {
		t.Fatal(err)
	}
	g := &udpGuest{api: kubernetes.NewForConfigOrDie(cfg)}
	for i := range 4 {
		ip := fmt.Sprintf("10.244.210.%d", 10+i)
		ns := plumbNetns(t, fmt.Sprintf("udp%d", i), fmt.Sprintf("vudp%d", i), ip, "10.244.210.1")
		testrig.StartEchoServers(t, ns, ip, ip, []int{udpEchoPort, 8080}, testrig.TCPUDP)
		g.pods = append(g.pods, ip)
	}
	g.client = plumbNetns(t, "udpcli", "vudpcli", "10.244.211.10", "10.244.211.1")
	return g
}

// scaleToZeroAndBack: the flow's entry is deleted by the sync that removes
// the last endpoint, datagrams on the same socket are refused at once and
// leave no entry, and the socket is answered by the new endpoint as soon
// as it is there.
func (g *udpGuest) scaleToZeroAndBack(t *testing.T, ctx context.Context, zero *v1.Service) {
	svc := testrig.UDPService{Addr: netip.MustParseAddrPort(udpZeroIP + ":53"), Client: g.client, Node: guestNetns}
	first, back := g.pods[3], g.pods[1]
	flow, err := testrig.OpenUDPFlow(g.client, svc.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	if got, err := flow.Ask(2 * time.Second); err != nil || got != first {
		t.Fatalf("before scaling to zero: %q, %v", got, err)
	}
	g.checkReplySource(t, svc, flow, first)
	tail := func() string { return g.kp.Tail(20) }
	g.setEndpoints(t, ctx, zero)
	gone, refused := svc.CheckScaledToZero(t, flow, 5, tail)
	g.setEndpoints(t, ctx, zero, back)
	took := testrig.WaitAnsweredBy(t, flow, back, tail)
	g.checkReplySource(t, svc, flow, back)
	t.Logf("FIGURE udp-zero-and-back ipvs: entry deleted %.1fs after the last endpoint left, datagrams refused within %dms with no entry, the same UDP socket answered %.1fs after an endpoint came back",
		gone.Seconds(), refused.Milliseconds(), took.Seconds())
}

// flowsAcrossRestart: kproxy stopped (SIGTERM) while flows run to three
// endpoints, one of which leaves the Service meanwhile. A sync of an
// unrelated change before keeps every entry; the restarted kproxy's first
// sync keeps those of flows to remaining endpoints (still marked) and
// deletes the others, whose next datagram IPVS sends to a live endpoint.
func (g *udpGuest) flowsAcrossRestart(t *testing.T, ctx context.Context, dns *v1.Service) {
	svc := testrig.UDPService{Addr: netip.MustParseAddrPort(udpDNSIP + ":53"), Client: g.client, Node: guestNetns}
	stay, leave := g.pods[:2], g.pods[2]
	flows := svc.OpenFlows(t, func(by map[string]int) bool {
		return by[stay[0]] >= 4 && by[stay[1]] >= 4 && by[leave] >= 2
	})
	before := svc.MarkFlows(t, flows, udpMark, true)
	g.syncUnrelatedChange(t, ctx)
	svc.CheckMarked(t, flows, udpMark, "a sync of an unrelated change")
	if err := g.kp.Stop(); err != nil {
		t.Fatal(err)
	}
	g.setEndpoints(t, ctx, dns, stay...) // the endpoint leaves while kproxy is down
	start := time.Now()
	g.start(t)
	g.waitSynced(t, 0)
	synced := time.Since(start)

	kept := svc.CheckEntriesKept(t, flows, before, udpMark, func(f testrig.EndpointFlow) bool { return f.Endpoint != leave })
	asked := time.Now()
	svc.CheckAnswers(t, flows, leave, true)
	if t.Failed() {
		return
	}
	t.Logf("FIGURE udp-restart ipvs: %d UDP flows across a restart (first sync %.1fs after start): %d conntrack entries kept, %d deleted; flows of remaining endpoints kept their endpoint, those of the endpoint that left moved (all %d answered in %dms)",
		len(flows), synced.Seconds(), kept, len(flows)-kept, len(flows), time.Since(asked).Milliseconds())
}

// checkReplySource checks that flow has a conntrack entry replying from
// pod's echo port, as IPVS's connection to that real server made it.
func (g *udpGuest) checkReplySource(t *testing.T, svc testrig.UDPService, flow *testrig.UDPFlow, pod string) {
	t.Helper()
	want := netip.AddrPortFrom(netip.MustParseAddr(pod), udpEchoPort)
	if e, ok := svc.Entry(t, flow); !ok || e.ReplySrc != want {
		t.Errorf("flow from port %d: conntrack entry %v (present %v), want one replying from %s", flow.LocalPort(), e, ok, want)
	}
}

// syncUnrelatedChange creates a TCP Service and waits for the sync that
// programs it (and its conntrack clean-up).
func (g *udpGuest) syncUnrelatedChange(t *testing.T, ctx context.Context) {
	t.Helper()
	syncs := g.syncs(t)
	g.create(t, ctx, makeService(udpNamespace, "unrelated", udpOtherIP, []string{"80"}), g.pods[0])
	if err := testrig.Eventually(10*time.Second, func() error {
		_, err := testrig.ProbeTCP(g.client, udpOtherIP+":80", time.Second)
		return err
	}); err != nil {
		t.Fatalf("the unrelated Service: %v\n%s", err, g.kp.Tail(20))
	}
	g.waitSynced(t, syncs)
}

func (g *udpGuest) create(t *testing.T, ctx context.Context, svc *v1.Service, podIPs ...string) {
	t.Helper()
	if err := createService(ctx, g.api, svc, g.slice(svc, podIPs...)); err != nil {
		t.Fatal(err)
	}
}

// setEndpoints replaces svc's EndpointSlice.
func (g *udpGuest) setEndpoints(t *testing.T, ctx context.Context, svc *v1.Service, podIPs ...string) {
	t.Helper()
	if err := testrig.ApplyEndpointSlice(ctx, g.api, g.slice(svc, podIPs...)); err != nil {
		t.Fatal(err)
	}
}

func (g *udpGuest) slice(svc *v1.Service, podIPs ...string) *discovery.EndpointSlice {
	var eps []ep
	for _, ip := range podIPs {
		eps = append(eps, ep(ip+"@"+e2eNode))
	}
	return makeSlice(svc, eps...)
}

func (g *udpGuest) start(t *testing.T) {
	t.Helper()
	g.kp = testrig.StartProcess(t, "", guestKproxyArgs("ipvs", guestUDPKubeconfig, "--ipvs-min-sync-period=100ms")...)
}

const syncCount = `kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}`

// syncs is how many syncs the running kproxy has made.
func (g *udpGuest) syncs(t *testing.T) float64 {
	t.Helper()
	m, err := testrig.ScrapeMetrics(guestNetns, testrig.KproxyMetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	return m[syncCount]
}

// waitSynced waits until the running kproxy has made more than after
// syncs and has applied every change it was told of.
func (g *udpGuest) waitSynced(t *testing.T, after float64) {
	t.Helper()
	if err := testrig.Eventually(60*time.Second, func() error {
		if exited, err := g.kp.Exited(); exited {
			return fmt.Errorf("kproxy exited: %v", err)
		}
		m, err := testrig.ScrapeMetrics(guestNetns, testrig.KproxyMetricsAddr)
		if err == nil && (m[syncCount] <= after || !testrig.Synced(m)) {
			err = fmt.Errorf("%v syncs (waiting for more than %v), synced %v", m[syncCount], after, testrig.Synced(m))
		}
		return err
	}); err != nil {
		t.Fatalf("kproxy: %v\n%s", err, g.kp.Tail(30))
	}
}
