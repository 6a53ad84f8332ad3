//go:build kind

package kind

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kproxy/kproxy/internal/mdsection"
	"github.com/kproxy/kproxy/internal/testrig"
)

// scaleServices > 0 adds the scale steps (a manual benchmark, not in CI):
// go test -tags kind ./e2e/kind -kind.scale=5000 (hack/test-kind.sh -kind.scale=5000).
var scaleServices = flag.Int("kind.scale", 0, "create this many Services and measure both proxies (results in bench/results)")

const scaleNS = "kproxy-scale"

var scaleResults []scaleRow

// testScale creates scaleServices Services with two endpoints each (the echo
// pods), waits until the last one answers from every node, and reads each
// node's proxy: network programming latency, sync durations, RSS. Then it
// removes them.
func testScale(proxy, process string) func(*testing.T, context.Context) {
	return func(t *testing.T, ctx context.Context) {
		n := *scaleServices
		before := scrapeAll(t)
		start := time.Now()
		last := createScaleObjects(t, ctx, n)
		created := time.Since(start).Seconds()
		programmed := waitProgrammed(t, ctx, last, start)
		time.Sleep(3 * time.Second)
		after := scrapeAll(t)
		for _, nd := range kc.nodes {
			row := scaleRow{Proxy: proxy, Node: nd.name, Services: n, Created: created, Programmed: programmed[nd.name],
				Commit: gitCommit(), MeasuredAtDate: time.Now().UTC().Format(time.RFC3339)}
			row.ProgP50, row.ProgP99, _ = histogramDelta(before[nd.name], after[nd.name], "kubeproxy_network_programming_duration_seconds")
			row.SyncP50, row.SyncP99, row.SyncCount = histogramDelta(before[nd.name], after[nd.name], "kubeproxy_sync_proxy_rules_duration_seconds")
			row.RSSMiB = processRSS(t, nd, process)
			row.LoadAvg = loadAverage()
			t.Logf("%+v", row)
			scaleResults = append(scaleResults, row)
		}
		deleteNamespace(t, ctx, scaleNS)
		writeScaleResults(t)
	}
}

func createScaleObjects(t *testing.T, ctx context.Context, n int) *corev1.Service {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: scaleNS}}
	if _, err := kc.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var ips []string
	list, err := kc.client.CoreV1().Pods(testNS).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.Status.PodIP != "" && len(ips) < 2 {
			ips = append(ips, p.Status.PodIP)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := createScaleService(ctx, i, ips); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	svc, err := kc.client.CoreV1().Services(scaleNS).Get(ctx, scaleName(n-1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func scaleName(i int) string { return fmt.Sprintf("s%05d", i) }

func createScaleService(ctx context.Context, i int, ips []string) error {
	name := scaleName(i)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: scaleNS},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 80,
			TargetPort: intstr.FromInt32(echoPort)}}},
	}
	if _, err := kc.client.CoreV1().Services(scaleNS).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	ready, port, portName, proto := true, int32(echoPort), "tcp", corev1.ProtocolTCP
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: scaleNS,
			Labels: map[string]string{discoveryv1.LabelServiceName: name},
			// What the EndpointSlice controller sets: the proxies' network
			// programming latency is measured from it.
			Annotations: map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().UTC().Format(time.RFC3339Nano)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	_, err := kc.client.DiscoveryV1().EndpointSlices(scaleNS).Create(ctx, es, metav1.CreateOptions{})
	return err
}

// waitProgrammed waits until svc answers from the client pod of every node
// and returns, per node, the seconds since start.
func waitProgrammed(t *testing.T, ctx context.Context, svc *corev1.Service, start time.Time) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, nd := range kc.nodes {
		client := from{pod: mustClient(t, ctx, nd)}
		err := eventually(10*time.Minute, func() error {
			s, err := kc.probe(client, "tcp", hostPort(svc.Spec.ClusterIP, 80), 1)
			if err == nil && s.Answered != 1 {
				err = fmt.Errorf("%s: not programmed yet: %s", nd.name, s)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out[nd.name] = time.Since(start).Seconds()
	}
	return out
}

func scrapeAll(t *testing.T) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	for _, nd := range kc.nodes {
		body, err := kc.onNode(nd, "curl", "-sf", "http://127.0.0.1:10249/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if out[nd.name], err = testrig.ParseMetrics(strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// histogramDelta returns the p50 and p99 (upper bucket bounds, linearly
// interpolated as Prometheus' histogram_quantile) and the count of the
// observations made between two scrapes of histogram name.
func histogramDelta(before, after map[string]float64, name string) (p50, p99, count float64) {
	type bucket struct{ le, n float64 }
	var buckets []bucket
	for k, v := range after {
		if !strings.HasPrefix(k, name+"_bucket{") {
			continue
		}
		i := strings.Index(k, `le="`)
		if i < 0 {
			continue
		}
		leText := k[i+4:]
		leText = leText[:strings.IndexByte(leText, '"')]
		le, err := strconv.ParseFloat(leText, 64)
		if leText == "+Inf" {
			le, err = 1e18, nil
		}
		if err == nil {
			buckets = append(buckets, bucket{le, v - before[k]})
		}
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
	if len(buckets) == 0 || buckets[len(buckets)-1].n == 0 {
		return 0, 0, 0
	}
	count = buckets[len(buckets)-1].n
	quantile := func(q float64) float64 {
		rank, prevLe, prevN := q*count, 0.0, 0.0
		for _, b := range buckets {
			if b.n >= rank {
				if b.le == 1e18 {
					return prevLe
				}
				return prevLe + (b.le-prevLe)*(rank-prevN)/max(b.n-prevN, 1e-9)
			}
			prevLe, prevN = b.le, b.n
		}
		return prevLe
	}
	return quantile(0.5), quantile(0.99), count
}

// processRSS reads the VmRSS of the node's proxy process, in MiB.
func processRSS(t *testing.T, nd node, process string) float64 {
	out, err := kc.onNode(nd, "sh", "-c", "grep VmRSS /proc/$(pgrep -x "+process+" | head -1)/status")
	if err != nil {
		t.Error(err)
		return 0
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return 0
	}
	kib, _ := strconv.ParseFloat(f[1], 64)
	return kib / 1024
}

// loadAverage is the machine's 1-minute load average: every node shares its
// two cores, so the figures only compare runs made under similar load.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func deleteNamespace(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	if err := kc.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
		return
	}
	err := eventually(10*time.Minute, func() error {
		_, err := kc.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err == nil {
			return fmt.Errorf("namespace %s is still being deleted", ns)
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

func gitCommit() string {
	out, err := run("git", "-C", repoRoot(), "describe", "--always", "--dirty")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(out)
}

// writeScaleResults writes bench/results/<date>-kind-<n>/results.{json,md}
// and the README's summary of them.
func writeScaleResults(t *testing.T) {
	dir := filepath.Join(repoRoot(), "bench", "results", fmt.Sprintf("%s-kind-%d", time.Now().UTC().Format("2006-01-02"), *scaleServices))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(scaleResults, "", "  ")
	for name, data := range map[string][]byte{"results.json": js, "results.md": []byte(scaleMarkdown(scaleResults))} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, _ := filepath.Rel(repoRoot(), dir)
	if err := mdsection.ReplaceInFile(filepath.Join(repoRoot(), "README.md"), readmeSection, scaleSummary(scaleResults, rel)); err != nil {
		t.Error(err)
	}
}
