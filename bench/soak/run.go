package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kproxy/kproxy/internal/testrig"
)

type config struct {
	duration        time.Duration
	rate            float64
	stable, churned int
	mode, kproxy    string
}

const metricsAddr = "127.0.0.1:10249"

// env is the running soak: the rig, the client and kproxy.
type env struct {
	topo   *testrig.Topology
	client kubernetes.Interface
	kp     *testrig.Process
	pods   []string
	// churned Service i: its endpoint pod, or "" while deleted; lastChange
	// is when the apiserver accepted its last change.
	mu         sync.Mutex
	state      []string
	lastChange []time.Time
}

func run(ctx context.Context, s *testrig.MainScope, c config) (*result, error) {
	if err := testrig.CheckKernel(); err != nil {
		return nil, err
	}
	bin := c.kproxy
	if bin == "" {
		var err error
		if bin, err = testrig.KproxyBinary(); err != nil {
			return nil, err
		}
	}
	topo, err := testrig.BuildTopology(s, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 2})
	if err != nil {
		return nil, err
	}
	cp, err := testrig.StartControlPlaneIn(s, topo)
	if err != nil {
		return nil, err
	}
	if err := cp.CreateNodes(ctx, topo); err != nil {
		return nil, err
	}
	e := &env{topo: topo, client: cp.Client, state: make([]string, c.churned), lastChange: make([]time.Time, c.churned)}
	for _, p := range topo.Pods() {
		if _, err := testrig.StartEchoServersIn(s, p.Netns, p.IP, p.IP, []int{8080}, testrig.TCP); err != nil {
			return nil, err
		}
		e.pods = append(e.pods, p.IP)
	}
	for i := range c.stable {
		if err := e.apply(ctx, stableName(i), stableIP(i), e.pods[i%len(e.pods)]); err != nil {
			return nil, err
		}
	}
	node := topo.Node(1)
	e.kp, err = testrig.StartProcessIn(s, node.Netns, bin, "--kubeconfig="+cp.KubeProxyKubeconfig,
		"--hostname-override="+node.Name, "--cluster-cidr="+testrig.ClusterCIDR, "--conntrack-max-per-core=0",
		"--proxy-mode="+c.mode, "--metrics-bind-address="+metricsAddr, "--healthz-bind-address=127.0.0.1:10256")
	if err != nil {
		return nil, err
	}
	for i := range c.stable {
		if err := e.waitAnswer(ctx, stableIP(i), e.pods[i%len(e.pods)], time.Minute); err != nil {
			return nil, fmt.Errorf("warm-up: %w\n%s", err, e.kp.Tail(20))
		}
	}
	res := &result{start: time.Now()}
	time.Sleep(2 * time.Second) // let the first syncs' garbage go
	if res.rssStart, res.goroutinesStart, err = e.sample(); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "soak: warm, RSS %.1f MiB, %d goroutines; churning for %v\n", res.rssStart, res.goroutinesStart, c.duration)

	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); e.churn(runCtx, c, res) }()
	go func() { defer wg.Done(); e.probeStable(runCtx, c, res) }()
	go func() { defer wg.Done(); e.probeChurned(runCtx, c, res) }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-tick.C:
			rss, g, err := e.sample()
			if err == nil {
				res.rssMax = max(res.rssMax, rss)
				fmt.Fprintf(os.Stderr, "soak: %v: RSS %.1f MiB, %d goroutines, %d probes, %d stable failures, %d changes\n",
					time.Since(res.start).Round(time.Second), rss, g, res.probes.Load(), res.stableFailures.Load(), res.changes.Load())
			}
			if exited, err := e.kp.Exited(); exited {
				wg.Wait()
				return res, fmt.Errorf("kproxy exited: %v\n%s", err, e.kp.Tail(30))
			}
		}
	}
	wg.Wait()
	res.elapsed = time.Since(res.start)
	time.Sleep(5 * time.Second) // let the last syncs finish
	res.rssEnd, res.goroutinesEnd, err = e.sample()
	res.rssMax = max(res.rssMax, res.rssEnd)
	return res, err
}

func stableName(i int) string { return fmt.Sprintf("stable-%d", i) }
func stableIP(i int) string   { return fmt.Sprintf("10.96.20.%d", i+1) }
func churnName(i int) string  { return fmt.Sprintf("churn-%d", i) }
func churnIP(i int) string    { return fmt.Sprintf("10.96.%d.%d", 21+i/250, i%250+1) }

// apply creates or updates a Service and its EndpointSlice with one pod.
func (e *env) apply(ctx context.Context, name, ip, pod string) error {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip}, Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}}}
	if _, err := e.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	node := "node1"
	if strings.HasPrefix(pod, "10.244.2.") {
		node = "node2"
	}
	es := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: "default", Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints:   []discovery.Endpoint{{Addresses: []string{pod}, NodeName: &node, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}}},
	}
	return testrig.ApplyEndpointSlice(ctx, e.client, es)
}

func (e *env) remove(ctx context.Context, name string) error {
	return testrig.DeleteService(ctx, e.client, "default", name, name+"-1")
}

// churn makes c.rate changes per second: create a missing Service, move a
// Service's endpoint to another pod, or delete a Service.
func (e *env) churn(ctx context.Context, c config, res *result) {
	rnd := rand.New(rand.NewPCG(7, 9))
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		i := rnd.IntN(c.churned)
		e.mu.Lock()
		cur := e.state[i]
		e.mu.Unlock()
		var next string
		var err error
		if cur != "" && rnd.IntN(4) == 0 {
			err = e.remove(ctx, churnName(i))
		} else {
			next = e.pods[rnd.IntN(len(e.pods))]
			err = e.apply(ctx, churnName(i), churnIP(i), next)
		}
		if err != nil {
			if ctx.Err() == nil {
				res.apiErrors.Add(1)
			}
			continue
		}
		res.changes.Add(1)
		e.mu.Lock()
		e.state[i], e.lastChange[i] = next, time.Now()
		e.mu.Unlock()
	}
}

// probeStable probes the Services that never change, back to back: every
// failure is the proxy's.
func (e *env) probeStable(ctx context.Context, c config, res *result) {
	for i := 0; ctx.Err() == nil; i++ {
		k := i % c.stable
		want := e.pods[k%len(e.pods)]
		got, err := e.probe(stableIP(k))
		res.probes.Add(1)
		if err != nil || got != want {
			res.stableFailures.Add(1)
			res.note(fmt.Sprintf("%s: got %q, %v", stableName(k), got, err))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle is how long after a change a churned Service must be programmed
// (kproxy's min sync period is 1 s).
const settle = 3 * time.Second

// probeChurned probes churned Services whose last change is older than
// settle: they must answer from their current endpoint.
func (e *env) probeChurned(ctx context.Context, c config, res *result) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for ctx.Err() == nil {
		i := rnd.IntN(c.churned)
		e.mu.Lock()
		want, since := e.state[i], time.Since(e.lastChange[i])
		e.mu.Unlock()
		if want == "" || since < settle {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		got, err := e.probe(churnIP(i))
		e.mu.Lock()
		changed := e.state[i] != want || time.Since(e.lastChange[i]) < since
		e.mu.Unlock()
		if changed {
			continue // changed under the probe: not counted
		}
		res.churnProbes.Add(1)
		if err != nil || got != want {
			res.churnFailures.Add(1)
			res.note(fmt.Sprintf("%s (settled %v): got %q want %q, %v", churnName(i), since.Round(time.Millisecond), got, want, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) probe(ip string) (string, error) {
	r, err := testrig.ProbeTCP(e.topo.Node(1).Pods[0].Netns, net.JoinHostPort(ip, "80"), 2*time.Second)
	return r.Name, err
}

func (e *env) waitAnswer(ctx context.Context, ip, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		got, err := e.probe(ip)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not answered by %s: %q %v", ip, want, got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample reads kproxy's RSS (from /proc) and go_goroutines (from /metrics).
func (e *env) sample() (rssMiB float64, goroutines int, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.kp.PID()))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			rssMiB = float64(kb) / 1024
		}
	}
	m, err := scrape(e.topo.Node(1).Netns)
	if err != nil {
		return rssMiB, 0, err
	}
	return rssMiB, int(m["go_goroutines"]), nil
}
