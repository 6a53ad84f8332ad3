package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kproxy/kproxy/bench/loadgen"
	"github.com/kproxy/kproxy/internal/testrig"
)

const metricsAddr = "127.0.0.1:10249"

// env is the running soak: the rig, the client and kproxy.
type env struct {
	topo   *testrig.Topology
	cp     *testrig.ControlPlane
	client kubernetes.Interface
	kp     *testrig.Process
	pods   []string
	// churned Service i: its endpoint pod, or "" while deleted or unknown;
	// lastChange is when the apiserver accepted its last change; busy while
	// a churn worker changes it.
	mu         sync.Mutex
	state      []string
	lastChange []time.Time
	busy       []bool
	out        outage
}

func run(ctx context.Context, s *testrig.MainScope, c config) (*result, error) {
	e, err := setup(ctx, s, c)
	if err != nil {
		return nil, err
	}
	res := &result{started: time.Now()}
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range []func(context.Context, config, *result){e.churn, e.probeStable, e.probeChurned, e.countRules} {
		wg.Add(1)
		go func() { defer wg.Done(); f(runCtx, c, res) }()
	}
	if c.killAfter > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); e.killAPIServer(runCtx, c, res) }()
	}
	err = e.sampleEvery(runCtx, c, res)
	cancel()
	wg.Wait()
	res.elapsed = time.Since(res.started)
	if err != nil {
		return res, err
	}
	time.Sleep(5 * time.Second) // let the last syncs finish
	smp, err := e.sample(time.Since(res.started))
	res.end = smp
	if c.keepLog != "" {
		err = errors.Join(err, copyFile(e.kp.LogPath, c.keepLog))
	}
	return res, err
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// setup builds the rig, the stable Services and the background, and starts
// kproxy; it returns once every stable Service answers.
func setup(ctx context.Context, s *testrig.MainScope, c config) (*env, error) {
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
	e := &env{topo: topo, cp: cp, state: make([]string, c.churned), lastChange: make([]time.Time, c.churned), busy: make([]bool, c.churned)}
	if e.client, err = fastClient(cp.Config); err != nil {
		return nil, err
	}
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
	if err := e.createBackground(ctx, c); err != nil {
		return nil, err
	}
	node := topo.Node(1)
	e.kp, err = testrig.StartProcessIn(s, node.Netns, bin, "--kubeconfig="+cp.KubeProxyKubeconfig,
		"--hostname-override="+node.Name, "--cluster-cidr="+testrig.ClusterCIDR, "--conntrack-max-per-core=0",
		"--proxy-mode="+c.mode, "--metrics-bind-address="+metricsAddr, "--healthz-bind-address=127.0.0.1:10256",
		fmt.Sprintf("-v=%d", c.kproxyV))
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	for i := range c.stable {
		if err := e.waitAnswer(ctx, stableIP(i), e.pods[i%len(e.pods)], 5*time.Minute); err != nil {
			return nil, fmt.Errorf("warm-up: %w\n%s", err, e.kp.Tail(20))
		}
	}
	logf("kproxy up, stable Services answer %v after its start", time.Since(t0).Round(100*time.Millisecond))
	return e, nil
}

// fastClient is an admin client without client-side throttling (its
// requests are exempt from the apiserver's priority and fairness too) and
// with a timeout, so no churn worker hangs on a dying apiserver.
func fastClient(base *rest.Config) (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(base)
	cfg.QPS, cfg.Burst, cfg.Timeout = 5000, 10000, 10*time.Second
	return kubernetes.NewForConfig(cfg)
}

func (e *env) createBackground(ctx context.Context, c config) error {
	if c.background == 0 {
		return nil
	}
	if err := loadgen.EnsureNamespace(ctx, e.client, loadNS); err != nil {
		return err
	}
	t0 := time.Now()
	err := loadgen.Create(ctx, e.client, loadNS, 0, c.background, c.endpoints, loadgen.Options{Every: 10 * time.Second,
		Progress: func(done, total int, rate float64) { logf("background: %d/%d Services (%.0f/s)", done, total, rate) }})
	logf("background: %d Services × %d endpoints in %v", c.background, c.endpoints, time.Since(t0).Round(time.Second))
	return err
}

var logStart = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "soak %6.0fs: %s\n", time.Since(logStart).Seconds(), fmt.Sprintf(format, args...))
}
