package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kproxy/kproxy/bench/loadgen"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

// APINamespace holds every object the benchmark creates.
const APINamespace = "bench"

// EchoPort is the port of the real endpoint behind every probe Service.
const EchoPort = 8080

// harness is the state of one run.
type harness struct {
	cfg    Config
	s      testrig.Scope
	log    progress
	topo   *testrig.Topology
	cp     *testrig.ControlPlane
	client kubernetes.Interface
	node   Node
	// backend serves every probe Service; client probes from a pod-like
	// namespace on the same node.
	backend, client_ *testrig.Pod
	echo             *testrig.EchoServers
	probeSeq         int
	res              *report.Results
}

// Run runs the benchmark described by cfg; objects live in s. It returns the
// results collected so far even on error (e.g. when ctx is cancelled), and
// writes them to cfg.Out after every workload.
func Run(ctx context.Context, s testrig.Scope, cfg Config) (*report.Results, error) {
	cfg = cfg.Defaults()
	h := &harness{cfg: cfg, s: s, log: progress{w: cfg.Log, start: time.Now()}}
	h.res = &report.Results{Started: time.Now(), Command: cfg.Command, Settings: cfg.Settings(), Machine: report.DescribeMachine()}
	specs, err := h.specs()
	if err != nil {
		return h.res, err
	}
	if err := h.setup(ctx); err != nil {
		return h.res, err
	}
	steps := cfg.steps()
	for si, step := range steps {
		m := step.M
		if si > 0 {
			h.log.logf("M=%d: deleting the M=%d load objects", m, steps[si-1].M)
			if err := loadgen.DeleteRole(ctx, h.client, APINamespace, "load", h.loadOpts("deleted")); err != nil {
				return h.res, err
			}
		}
		have := 0
		for _, n := range step.Ns {
			if n > have {
				h.log.logf("N=%d M=%d: creating Services %d..%d", n, m, have, n-1)
				if err := loadgen.Create(ctx, h.client, APINamespace, have, n, m, h.loadOpts("created")); err != nil {
					return h.res, err
				}
				have = n
			}
			if err := h.workload(ctx, specs, n, m); err != nil {
				return h.res, err
			}
		}
	}
	h.res.Finished = time.Now()
	return h.res, h.write()
}

func (h *harness) loadOpts(verb string) loadgen.Options {
	return loadgen.Options{Workers: h.cfg.Workers, Progress: func(done, total int, rate float64) {
		h.log.logf("  %s %d/%d Services (%.0f/s)", verb, done, total, rate)
	}}
}

// specs resolves the binaries and selects the proxies.
func (h *harness) specs() ([]Spec, error) {
	if err := h.checkProvenance(); err != nil {
		return nil, err
	}
	kbin, kwhy := h.cfg.KproxyBinary, ""
	if kbin != "" {
		h.res.Machine.Kproxy = "prebuilt " + filepath.Base(kbin)
	} else {
		h.log.logf("building ./cmd/kproxy")
		var err error
		if kbin, err = testrig.KproxyBinary(); err != nil {
			kwhy = oneLine(err.Error())
			h.log.logf("kproxy unavailable: %s", kwhy)
		}
	}
	ubin, uwhy := h.cfg.UpstreamBinary, ""
	if ubin == "" {
		var err error
		if ubin, err = testrig.UpstreamBinary(testrig.BinKubeProxy); err != nil {
			uwhy = err.Error()
		}
	}
	if out, err := testrig.Exec("", ubin, "--version"); err == nil {
		h.res.Machine.Upstream = strings.TrimSpace(out)
	}
	specs := DefaultSpecs(kbin, kwhy, ubin, uwhy)
	if h.cfg.HeapProfiles {
		specs = withProfiling(specs)
	}
	return Select(specs, h.cfg.Proxies)
}

// setup builds the topology (1 node, 2 pods) and the control plane.
func (h *harness) setup(ctx context.Context) error {
	if err := testrig.CheckKernel(); err != nil {
		return err
	}
	if _, err := testrig.EnsureUpstream(false); err != nil {
		return err
	}
	h.log.logf("building namespaces and starting etcd + kube-apiserver")
	topo, err := testrig.BuildTopology(h.s, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 2})
	if err != nil {
		return err
	}
	cp, err := testrig.StartControlPlaneIn(h.s, topo)
	if err != nil {
		return err
	}
	if err := cp.CreateNodes(ctx, topo); err != nil {
		return err
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	if h.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	if err := loadgen.EnsureNamespace(ctx, h.client, APINamespace); err != nil {
		return err
	}
	h.topo, h.cp = topo, cp
	h.node = &NetnsNode{Topo: topo, Index: 1}
	h.backend, h.client_ = topo.Node(1).Pods[0], topo.Node(1).Pods[1]
	return nil
}

// workload measures every proxy Repeats times, in an order alternated
// between repeats, then the floors, on the current objects.
func (h *harness) workload(ctx context.Context, specs []Spec, n, m int) error {
	var dumps floorDumps
	for rep := range h.cfg.Repeats {
		for i, spec := range repeatOrder(specs, rep) {
			h.log.logf("N=%d M=%d: repeat %d/%d, proxy %d/%d %s", n, m, rep+1, h.cfg.Repeats, i+1, len(specs), spec.Name)
			row, dump := h.runProxy(ctx, spec, n, m, rep)
			h.log.logf("N=%d M=%d: %s: %s %s", n, m, spec.Name, row.Status, row.Error)
			h.res.Rows = append(h.res.Rows, row)
			dumps.offer(spec, dump)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := h.write(); err != nil {
			return err
		}
	}
	if d := dumps.iptables; d.dump != "" {
		h.log.logf("N=%d M=%d: floor (iptables-restore of the %s ruleset)", n, m, d.from)
		h.res.Rows = append(h.res.Rows, h.floor(n, m, d.dump))
	}
	if d := dumps.nft; d.dump != "" {
		h.log.logf("N=%d M=%d: nft floor (nft -f of the %s table)", n, m, d.from)
		h.res.Rows = append(h.res.Rows, h.nftFloor(n, m, d.dump))
	}
	if err := h.write(); err != nil {
		return err
	}
	return ctx.Err()
}

func (h *harness) write() error {
	if h.cfg.Out == "" {
		return nil
	}
	if err := h.res.Write(h.cfg.Out); err != nil {
		return err
	}
	h.log.logf("results written to %s", h.cfg.Out)
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
