package ipvs

// The same-run comparison with upstream kube-proxy v1.37.2 in ipvs mode:
// with KPROXY_IPVS_COMPARE=1, TestVMEndToEnd first boots a VM that runs
// upstream's kube-proxy against the same apiserver and objects
// (TestGuestUpstream), then the kproxy VM. Manual/bench only: upstream's
// first sync takes minutes at N=1000.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kproxy/kproxy/internal/testrig"
)

const (
	guestKubeProxy   = "/usr/local/bin/kube-proxy"
	e2eUpstreamProbe = "10.96.200.3"
)

func compareUpstream() bool { return os.Getenv("KPROXY_IPVS_COMPARE") == "1" }

// syncMetric is kubeproxy_sync_proxy_rules_duration_seconds of one family.
type syncMetric struct {
	count int
	sum   float64
}

// scrape reads upstream's sync metric (IPv4 and IPv6) and its network
// programming metric.
func scrape() (v4, v6, prog syncMetric, err error) {
	resp, err := http.Get("http://127.0.0.1:10249/metrics")
	if err != nil {
		return v4, v6, prog, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		f, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
		var m *syncMetric
		switch {
		case strings.HasPrefix(name, "kubeproxy_sync_proxy_rules_duration_seconds_") && strings.Contains(name, `"IPv6"`):
			m = &v6
		case strings.HasPrefix(name, "kubeproxy_sync_proxy_rules_duration_seconds_"):
			m = &v4
		case strings.HasPrefix(name, "kubeproxy_network_programming_duration_seconds_"):
			m = &prog
		default:
			continue
		}
		switch {
		case strings.Contains(name, "_count"):
			m.count = int(f)
		case strings.Contains(name, "_sum"):
			m.sum = f
		}
	}
	return v4, v6, prog, sc.Err()
}

// ipvsHas reports whether /proc/net/ip_vs has a TCP virtual server on ip:80.
func ipvsHas(ip string) bool {
	b, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		return false
	}
	var a [4]int
	fmt.Sscanf(ip, "%d.%d.%d.%d", &a[0], &a[1], &a[2], &a[3])
	return strings.Contains(string(b), fmt.Sprintf("TCP  %02X%02X%02X%02X:0050", a[0], a[1], a[2], a[3]))
}

func TestGuestUpstream(t *testing.T) {
	requireVM(t)
	if _, err := os.Stat(guestKubeProxy); err != nil {
		t.Skip("no kube-proxy: TestVMEndToEnd with KPROXY_IPVS_COMPARE=1 provides one")
	}
	n := benchN()
	want := n + 2
	cmd := exec.Command(guestKubeProxy, "--kubeconfig="+guestKubeconfig, "--proxy-mode=ipvs", "--conntrack-max-per-core=0",
		"--hostname-override="+e2eNode, "--cluster-cidr=10.244.0.0/16", "--metrics-bind-address=127.0.0.1:10249", "-v=1")
	logf, err := os.Create("/tmp/kube-proxy.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile("/tmp/kube-proxy.log")
			t.Logf("kube-proxy log:\n%s", tail(string(b), 40))
		}
	}()
	poll := func(timeout time.Duration, ok func(v4, v6, prog syncMetric) bool) (syncMetric, syncMetric, syncMetric, time.Time) {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			v4, v6, prog, err := scrape()
			if err == nil && ok(v4, v6, prog) {
				return v4, v6, prog, time.Now()
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("upstream kube-proxy: condition not reached within %v", timeout)
		return syncMetric{}, syncMetric{}, syncMetric{}, time.Time{}
	}
	first, _, _, synced := poll(15*time.Minute, func(v4, _, _ syncMetric) bool { return v4.count >= 1 })
	if first.count != 1 {
		t.Logf("note: %d syncs before the first scrape", first.count)
	}
	for !ipvsHas(e2eWebIP) {
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Printf("UPSTREAM-BENCH services=%d first_sync=%.3fs start_to_synced=%.3fs\n", want, first.sum/float64(first.count), synced.Sub(start).Seconds())
	// Let the IPv6 proxier's first sync (it starts after the IPv4 one)
	// and any follow-up sync finish, so that the probe is measured alone.
	prev, _, _, _ := poll(2*time.Minute, func(v4, v6, _ syncMetric) bool { return v6.count >= 1 || time.Since(synced) > 30*time.Second })
	stableSince := time.Now()
	for time.Since(stableSince) < 3*time.Second {
		time.Sleep(500 * time.Millisecond)
		if v4, _, _, err := scrape(); err == nil && v4.count != prev.count {
			prev, stableSince = v4, time.Now()
		}
	}
	before, _, progBefore, _ := poll(time.Minute, func(syncMetric, syncMetric, syncMetric) bool { return true })
	adminCfg, err := clientcmd.BuildConfigFromFlags("", guestAdmin)
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(adminCfg)
	probe := makeService("e2e", "probe-upstream", e2eUpstreamProbe, []string{"80"})
	created := time.Now()
	if err := createService(context.Background(), admin, probe, makeSlice(probe, ep(e2ePodIP+"@"+e2eNode))); err != nil {
		t.Fatal(err)
	}
	for !ipvsHas(e2eUpstreamProbe) {
		if time.Since(created) > 5*time.Minute {
			t.Fatal("upstream kube-proxy did not program the probe Service")
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := time.Now()
	// IPVS is programmed early in a sync (ipsets and iptables follow):
	// wait for the sync in progress to end.
	atSeen, _, _, _ := poll(time.Minute, func(syncMetric, syncMetric, syncMetric) bool { return true })
	after, _, prog, done := poll(5*time.Minute, func(v4, _, _ syncMetric) bool { return v4.count > atSeen.count })
	syncs := after.count - before.count
	progLatency := -1.0
	if prog.count > progBefore.count {
		progLatency = (prog.sum - progBefore.sum) / float64(prog.count-progBefore.count)
	}
	fmt.Printf("UPSTREAM-BENCH one_service_sync_avg=%.3fs syncs=%d syncs_total=%.3fs network_programming=%.3fs create_to_ipvs=%.3fs create_to_sync_done=%.3fs\n",
		(after.sum-before.sum)/float64(syncs), syncs, after.sum-before.sum, progLatency,
		seen.Sub(created).Seconds(), done.Sub(created).Seconds())
	if err := admin.CoreV1().Services("e2e").Delete(context.Background(), probe.Name, metav1DeleteOptions()); err != nil {
		t.Errorf("delete the probe Service: %v", err)
	}
}

func metav1DeleteOptions() metav1.DeleteOptions { return metav1.DeleteOptions{} }

// bootUpstreamVM runs TestGuestUpstream in a fresh VM and returns its
// serial output.
func bootUpstreamVM(t *testing.T, netns string, n int, kubeconfig, admin []byte) string {
	t.Helper()
	bin, err := testrig.UpstreamBinary(testrig.BinKubeProxy)
	if err != nil {
		testrig.SkipOrFail(t, err.Error())
	}
	kp, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	out := bootVM(t, vmRun{
		args:    []string{"-test.v", "-test.run", "'^TestGuestUpstream$'", "-test.timeout", "25m"},
		files:   map[string][]byte{guestKubeconfig: kubeconfig, guestAdmin: admin, guestKubeProxy: kp},
		env:     map[string]string{"KPROXY_IPVS_BENCH_N": strconv.Itoa(n)},
		netns:   netns,
		mem:     "2048M",
		timeout: 28 * time.Minute,
	})
	if !strings.Contains(out, "--- PASS: TestGuestUpstream") {
		t.Fatal("TestGuestUpstream did not pass in the guest")
	}
	for _, m := range regexp.MustCompile(`UPSTREAM-BENCH .*`).FindAllString(out, -1) {
		t.Log(m)
	}
	return out
}

var benchField = regexp.MustCompile(`(\w+)=([0-9.]+)s?\b`)

// benchFields collects key=value figures of the lines with the prefix.
func benchFields(out, prefix string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, prefix+" "); i >= 0 {
			for _, f := range benchField.FindAllStringSubmatch(line[i:], -1) {
				v, _ := strconv.ParseFloat(f[2], 64)
				m[f[1]] = v
			}
		}
	}
	return m
}

// logRatios prints kproxy's figures against upstream's of the same run.
func logRatios(t *testing.T, upstream, kproxy string) {
	u, k := benchFields(upstream, "UPSTREAM-BENCH"), benchFields(kproxy, "KPROXY-BENCH")
	row := func(name string, uv, kv, goal float64) {
		if uv == 0 {
			t.Logf("COMPARE %s: upstream missing", name)
			return
		}
		r := kv / uv
		verdict := ""
		if goal > 0 {
			verdict = fmt.Sprintf(" (goal ≤ %.2f×: %v)", goal, r <= goal)
		}
		t.Logf("COMPARE %s: upstream %.3fs kproxy %.3fs ratio %.4f×%s", name, uv, kv, r, verdict)
	}
	row("first sync", u["first_sync"], k["first_full_sync"], 0.05)
	row("start to first sync done", u["start_to_synced"], k["start_to_synced"], 0)
	row("one changed Service, one sync", u["one_service_sync_avg"], k["one_service_sync"], 0.1)
	row("one changed Service, all syncs it triggered", u["syncs_total"], k["syncs_total"], 0)
}
