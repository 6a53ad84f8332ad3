package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// e2e is one control-plane end-to-end environment: a topology, the
// control plane, and kproxy running in node1.
type e2e struct {
	t    *testing.T
	bin  string
	topo *testrig.Topology
	cp   *testrig.ControlPlane
	node *testrig.Node
	kp   *testrig.Process
	mode string // --proxy-mode; "" is the default, iptables
}

// startE2E builds the standard environment of the control-plane tests:
// two nodes of two pods each running TCP and UDP echo servers on 8080,
// the client routed to the Service range through node1, and kproxy in
// mode started in node1 and converged. It returns the environment and
// the scratch namespace for waitConverged.
func startE2E(t *testing.T, mode string) (*e2e, string) {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo, cp, bin := testrig.StartCluster(t, testrig.TopologyOptions{Nodes: 2, PodsPerNode: 2})
	for _, p := range topo.Pods() {
		testrig.StartEchoServers(t, p.Netns, p.Name, p.IP, []int{8080}, testrig.TCPUDP)
	}
	if err := topo.AddClientRoute(testrig.ServiceCIDR, 1); err != nil {
		t.Fatal(err)
	}
	scratch := testrig.NewNetns(t, "canon")
	e := &e2e{t: t, bin: bin, topo: topo, cp: cp, node: topo.Node(1), mode: mode}
	e.startKproxy()
	e.waitConverged(t.Context(), scratch, "start "+mode)
	return e, scratch
}

// startKproxy runs kproxy in the node; KproxyArgs has the traffic flags.
func (e *e2e) startKproxy() *testrig.Process {
	var extra []string
	if e.mode != "" {
		extra = append(extra, "--proxy-mode="+e.mode)
	}
	e.kp = testrig.StartProcess(e.t, e.node.Netns, testrig.KproxyArgs(e.bin, e.cp, e.node, extra...)...)
	return e.kp
}

// metrics scrapes kproxy's /metrics into "name{labels}" -> value.
func (e *e2e) metrics() (map[string]float64, error) {
	return testrig.ScrapeMetrics(e.node.Netns, testrig.KproxyMetricsAddr)
}

// waitConverged waits until the node's ruleset equals a fresh full render
// of the apiserver's objects (testrig.RenderCheck).
func (e *e2e) waitConverged(ctx context.Context, scratch, step string) string {
	e.t.Helper()
	return testrig.RenderCheck{T: e.t, Bin: e.bin, CP: e.cp, Node: e.node, Scratch: scratch, Mode: e.mode}.WaitConverged(ctx, e.kp, step)
}

// probeNames probes addr from ns up to tries times and returns the echo
// servers that answered; it stops early once every name in want answered.
// Any outcome other than an answer from a name in want fails the test.
func probeNames(t *testing.T, ns string, proto testrig.Proto, addr string, want []string, tries int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := 0; i < tries; i++ {
		r, err := testrig.Probe(ns, proto, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("probe %s %s from %s: %v (want one of %v)", proto, addr, ns, err, want)
		}
		if !slices.Contains(want, r.Name) {
			t.Fatalf("probe %s %s from %s answered by %s, want one of %v", proto, addr, ns, r.Name, want)
		}
		seen[r.Name]++
		if len(seen) == len(want) && i >= len(want) {
			break
		}
	}
	return seen
}

// probeExactly probes addr from ns and fails the test unless exactly the
// echo servers in want answer: every one of them within tries probes, and
// no other. Each probe is a new connection, so with n endpoints chosen at
// random one is missed with a chance of about n·((n-1)/n)^tries.
func probeExactly(t *testing.T, ns string, proto testrig.Proto, addr string, want []string, tries int) map[string]int {
	t.Helper()
	seen := probeNames(t, ns, proto, addr, want, tries)
	if len(seen) != len(want) {
		t.Errorf("probe %s %s from %s: %d probes answered by %v, want every one of %v", proto, addr, ns, tries, seen, want)
	}
	return seen
}

// expectNoAnswer probes once and fails if an echo server answers.
func expectNoAnswer(t *testing.T, ns string, addr string) testrig.Outcome {
	t.Helper()
	r, err := testrig.ProbeTCP(ns, addr, time.Second)
	if err == nil {
		t.Fatalf("probe %s from %s answered by %s, want no answer", addr, ns, r.Name)
	}
	return testrig.Classify(err)
}
