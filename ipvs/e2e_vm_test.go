package ipvs

// End to end: kproxy's ipvs mode inside the VM syncs from a real
// kube-apiserver on the host (testrig's control plane; qemu runs in the
// control plane's namespace, so the guest reaches 198.51.100.1:6443
// through qemu's user-mode network). With KPROXY_IPVS_BENCH_N=1000 it is
// the speed comparison of RESULTS.md.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

const (
	e2eNode         = "vmnode"
	e2eGuestIP      = "10.0.2.15" // qemu user-mode network
	e2ePodIP        = "10.244.200.10"
	e2eWebIP        = "10.96.200.1"
	e2eProbeIP      = "10.96.200.2"
	guestKubeconfig = "/etc/kproxy/kubeconfig"
	guestAdmin      = "/etc/kproxy/admin.kubeconfig"
)

func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("KPROXY_IPVS_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 20
}

// benchService is Service i of the load: ClusterIP, one TCP port, two
// endpoints on another node.
func benchService(i int) (*v1.Service, *discovery.EndpointSlice) {
	ip := fmt.Sprintf("10.96.%d.%d", 1+i/250, i%250+1)
	svc := makeService("bench", fmt.Sprintf("svc-%d", i), ip, []string{"80"})
	return svc, makeSlice(svc, ep(fmt.Sprintf("10.244.%d.%d@node2", i/250, i%250+1)), ep(fmt.Sprintf("10.245.%d.%d@node2", i/250, i%250+1)))
}

func createService(ctx context.Context, c kubernetes.Interface, svc *v1.Service, es *discovery.EndpointSlice) error {
	if _, err := c.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := c.DiscoveryV1().EndpointSlices(es.Namespace).Create(ctx, es, metav1.CreateOptions{})
	return err
}

func TestVMEndToEnd(t *testing.T) {
	prepareVM(t)
	n := benchN()
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 1})
	cp := testrig.StartControlPlane(t, topo)
	ctx := context.Background()
	c := cp.Client
	node := makeNode(e2eNode, e2eGuestIP)
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"bench", "e2e"} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	web := makeService("e2e", "web", e2eWebIP, []string{"80"})
	if err := createService(ctx, c, web, makeSlice(web, ep(e2ePodIP+"@"+e2eNode))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				svc, es := benchService(i)
				if err := createService(ctx, c, svc, es); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("created %d Services with 2 endpoints each in %v", n, time.Since(start).Round(time.Millisecond))
	kubeconfig, admin := readKubeconfigs(t, cp)
	var upstream string
	if compareUpstream() {
		upstream = bootUpstreamVM(t, cp.Netns, n, kubeconfig, admin)
	}
	out := bootVM(t, vmRun{
		args:    []string{"-test.v", "-test.run", "'^TestGuestEndToEnd$'", "-test.timeout", "10m"},
		files:   map[string][]byte{guestKubeconfig: kubeconfig, guestAdmin: admin},
		env:     map[string]string{"KPROXY_IPVS_BENCH_N": strconv.Itoa(n)},
		netns:   cp.Netns,
		mem:     "1536M",
		timeout: 12 * time.Minute,
	})
	if !strings.Contains(out, "--- PASS: TestGuestEndToEnd") {
		t.Error("TestGuestEndToEnd did not pass in the guest")
	}
	for _, m := range regexp.MustCompile(`KPROXY-BENCH .*`).FindAllString(out, -1) {
		t.Log(m)
	}
	if upstream != "" {
		logRatios(t, upstream, out)
	}
}

// readKubeconfigs returns cp's kube-proxy and admin kubeconfigs, for a
// guest that runs a proxy and changes API objects itself.
func readKubeconfigs(t *testing.T, cp *testrig.ControlPlane) (kubeconfig, admin []byte) {
	t.Helper()
	kubeconfig, err := os.ReadFile(cp.KubeProxyKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err = os.ReadFile(cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig, admin
}

// timedProxier records every Sync of the wrapped Proxier.
type timedProxier struct {
	*Proxier
	mu    sync.Mutex
	syncs []syncRecord
}

type syncRecord struct {
	dur      time.Duration
	end      time.Time
	full     bool
	services int
	written  int
	err      error
	snap     *proxier.Snapshot
}

// hasEndpoints reports whether the synced snapshot had ns/name with a
// usable endpoint.
func (s syncRecord) hasEndpoints(ns, name string) bool {
	for n, svc := range s.snap.Services {
		if n.Namespace == ns && n.Name == name && len(svc.Ports) > 0 && svc.Ports[0].Usable.HasAny {
			return true
		}
	}
	return false
}

func (tp *timedProxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	start := time.Now()
	res, err := tp.Proxier.Sync(ctx, req)
	rec := syncRecord{dur: time.Since(start), end: time.Now(), full: res.Full, services: len(req.Snapshot.Services), err: err, snap: req.Snapshot}
	for _, n := range res.Written {
		rec.written += n
	}
	tp.mu.Lock()
	tp.syncs = append(tp.syncs, rec)
	tp.mu.Unlock()
	return res, err
}

// waitSync waits for the first successful sync after index from that
// satisfies ok.
func (tp *timedProxier) waitSync(t *testing.T, from int, timeout time.Duration, ok func(syncRecord) bool) (int, syncRecord) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		tp.mu.Lock()
		for i := from; i < len(tp.syncs); i++ {
			if s := tp.syncs[i]; s.err == nil && ok(s) {
				tp.mu.Unlock()
				return i, s
			}
		}
		tp.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no matching sync within %v: %+v", timeout, tp.syncs)
	return 0, syncRecord{}
}

func TestGuestEndToEnd(t *testing.T) {
	requireVM(t)
	if _, err := os.Stat(guestKubeconfig); err != nil {
		t.Skip("no kubeconfig: TestVMEndToEnd provides one")
	}
	n := benchN()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A pod namespace for the e2e Service's endpoint.
	pod := plumbNetns(t, "pod", "vpod", e2ePodIP, "10.244.200.1")
	client := plumbNetns(t, "cli", "vcli", "10.244.201.10", "10.244.201.1")
	testrig.StartEchoServers(t, pod, "e2epod", e2ePodIP, []int{8080}, testrig.TCP)

	cfg, err := clientcmd.BuildConfigFromFlags("", guestKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := proxier.NewAPIClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{LocalDetector: proxier.DetectLocalByCIDR(mustPrefixes("10.244.0.0/16")...)})
	if err != nil {
		t.Fatal(err)
	}
	tp := &timedProxier{Proxier: p}
	t.Cleanup(func() { p.Cleanup(context.Background()) })
	tracker := proxier.NewTracker(e2eNode, []proxier.Family{proxier.IPv4}, proxier.LogInvalid, time.Now())
	loop := proxier.NewLoop(tracker, proxier.LoopOptions{Mode: "ipvs", MinSyncPeriod: time.Second, SyncPeriod: 30 * time.Second,
		Backends: map[proxier.Family]proxier.Proxier{proxier.IPv4: tp}})
	start := time.Now()
	if err := proxier.StartInformers(ctx, kc, e2eNode, 0, loop); err != nil {
		t.Fatal(err)
	}
	go loop.Run(ctx)
	want := n + 2 // bench Services, e2e/web, default/kubernetes
	i, first := tp.waitSync(t, 0, 8*time.Minute, func(s syncRecord) bool { return s.services >= want })
	fmt.Printf("KPROXY-BENCH services=%d first_full_sync=%.3fs start_to_synced=%.3fs written=%d syncs_before=%d\n",
		first.services, first.dur.Seconds(), first.end.Sub(start).Seconds(), first.written, i)
	vss, err := p.opts.Kernel.ListVirtualServers(ctx)
	if err != nil || len(vss) < want {
		t.Fatalf("%d virtual servers, want ≥ %d (%v)", len(vss), want, err)
	}
	r, err := testrig.ProbeTCP(client, e2eWebIP+":80", 3*time.Second)
	if err != nil || r.Name != "e2epod" {
		t.Fatalf("probe of the e2e Service: %+v %v", r, err)
	}

	// One more Service (as the upstream measurement's probe): how long
	// until it is programmed, and what that sync costs.
	adminCfg, err := clientcmd.BuildConfigFromFlags("", guestAdmin)
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(adminCfg)
	time.Sleep(1100 * time.Millisecond) // past the min sync period
	tp.mu.Lock()
	from := len(tp.syncs)
	tp.mu.Unlock()
	probe := makeService("e2e", "probe", e2eProbeIP, []string{"80"})
	created := time.Now()
	if err := createService(ctx, admin, probe, makeSlice(probe, ep(e2ePodIP+"@"+e2eNode))); err != nil {
		t.Fatal(err)
	}
	_, rec := tp.waitSync(t, from, 2*time.Minute, func(s syncRecord) bool { return s.hasEndpoints("e2e", "probe") })
	var changed time.Duration
	tp.mu.Lock()
	nsyncs := 0
	for _, s := range tp.syncs[from:] {
		changed += s.dur
		nsyncs++
		if s.end.Equal(rec.end) {
			break
		}
	}
	tp.mu.Unlock()
	fmt.Printf("KPROXY-BENCH one_service_sync=%.3fs full=%v written=%d syncs=%d syncs_total=%.3fs create_to_programmed=%.3fs\n",
		rec.dur.Seconds(), rec.full, rec.written, nsyncs, changed.Seconds(), rec.end.Sub(created).Seconds())
	if r, err := testrig.ProbeTCP(client, e2eProbeIP+":80", 3*time.Second); err != nil || r.Name != "e2epod" {
		t.Errorf("probe of the new Service: %+v %v", r, err)
	}
}

func mustPrefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// plumbNetns makes a namespace joined to the guest's root namespace by a
// veth pair (point-to-point, like testrig's pods) and returns its name.
func plumbNetns(t *testing.T, suffix, hostIf, ip, gw string) string {
	ns := testrig.NewNetns(t, suffix)
	testrig.Run(t, "", "ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns)
	testrig.Run(t, "", "ip", "addr", "add", gw+"/32", "dev", hostIf)
	testrig.Run(t, "", "ip", "link", "set", hostIf, "up")
	testrig.Run(t, "", "ip", "route", "add", ip+"/32", "dev", hostIf)
	testrig.Run(t, ns, "ip", "addr", "add", ip+"/32", "dev", "eth0")
	testrig.Run(t, ns, "ip", "link", "set", "eth0", "up")
	testrig.Run(t, ns, "ip", "route", "add", gw, "dev", "eth0")
	testrig.Run(t, ns, "ip", "route", "add", "default", "via", gw)
	return ns
}
