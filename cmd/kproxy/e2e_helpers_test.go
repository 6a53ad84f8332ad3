package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

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
}

// trafficFlags are given to both the daemon and "kproxy render", so that
// the render is what the daemon should have written.
func (e *e2e) trafficFlags() []string {
	return []string{"--hostname-override=" + e.node.Name, "--cluster-cidr=" + testrig.ClusterCIDR}
}

// startKproxy runs kproxy in the node; KproxyArgs has the traffic flags.
func (e *e2e) startKproxy() *testrig.Process {
	e.kp = testrig.StartProcess(e.t, e.node.Netns, testrig.KproxyArgs(e.bin, e.cp, e.node)...)
	return e.kp
}

// metrics scrapes kproxy's /metrics into "name{labels}" -> value.
func (e *e2e) metrics() (map[string]float64, error) {
	return testrig.ScrapeMetrics(e.node.Netns, testrig.KproxyMetricsAddr)
}

// synced reports whether kproxy has applied everything it has been told:
// the last sync is not older than the last queued update and nothing is
// pending.
func synced(m map[string]float64) bool {
	last, ok1 := m[`kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`]
	queued, ok2 := m[`kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"}`]
	return ok1 && ok2 && last >= queued &&
		m["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0 &&
		m["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] == 0
}

// dumpObjects writes the Services, EndpointSlices and Nodes now in the
// apiserver as multi-document YAML, for "kproxy render".
func (e *e2e) dumpObjects(ctx context.Context) (string, error) {
	var docs []any
	svcs, err := e.cp.Client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for i := range svcs.Items {
		s := svcs.Items[i]
		s.APIVersion, s.Kind = "v1", "Service"
		docs = append(docs, &s)
	}
	eps, err := e.cp.Client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for i := range eps.Items {
		s := eps.Items[i]
		s.APIVersion, s.Kind = "discovery.k8s.io/v1", "EndpointSlice"
		docs = append(docs, &s)
	}
	nodes, err := e.cp.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	for i := range nodes.Items {
		n := nodes.Items[i]
		n.APIVersion, n.Kind = "v1", "Node"
		docs = append(docs, &n)
	}
	var b strings.Builder
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	path := filepath.Join(e.t.TempDir(), "objects.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// expectedRules is "kproxy render" of the objects in the apiserver,
// restored into a scratch namespace and saved back, so that it is in the
// kernel's canonical syntax like the node's ruleset.
func (e *e2e) expectedRules(ctx context.Context, scratch string) (string, error) {
	path, err := e.dumpObjects(ctx)
	if err != nil {
		return "", fmt.Errorf("dump objects: %w", err)
	}
	out, err := testrig.Exec("", append([]string{e.bin, "render", "-f", path}, e.trafficFlags()...)...)
	if err != nil {
		return "", fmt.Errorf("kproxy render: %w", err)
	}
	if _, err := testrig.ExecInput(scratch, out, "iptables-restore"); err != nil {
		return "", fmt.Errorf("restore the render in %s: %w\n%s", scratch, err, out)
	}
	return savedRules(scratch)
}

// ownChainsOutsideRender are chains kproxy keeps that a render does not
// print (canaries; kubelet's firewall chains it creates but never owns).
var ownChainsOutsideRender = []string{"KUBE-PROXY-CANARY", "KUBE-KUBELET-CANARY", "KUBE-FIREWALL"}

// savedRules is the nat and filter rules of our chains in ns, without
// counters, chains sorted by name, each chain's rules in kernel order.
func savedRules(ns string) (string, error) {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		out, err := testrig.Exec(ns, "iptables-save", "-t", table)
		if err != nil {
			return "", fmt.Errorf("iptables-save -t %s in %s: %w", table, ns, err)
		}
		chains := map[string][]string{}
		for _, line := range strings.Split(out, "\n") {
			// Every chain kproxy owns, KPROXY-SVCS-* buckets too.
			var chain string
			f := strings.Fields(line)
			switch {
			case len(f) > 0 && strings.HasPrefix(f[0], ":") && testrig.IsOwnChain(f[0][1:]):
				chain, line = f[0][1:], ""
			case len(f) > 1 && f[0] == "-A" && testrig.IsOwnChain(f[1]):
				chain = f[1]
			default:
				continue
			}
			if slices.Contains(ownChainsOutsideRender, chain) {
				continue
			}
			if _, ok := chains[chain]; !ok {
				chains[chain] = []string{}
			}
			if line != "" {
				chains[chain] = append(chains[chain], line)
			}
		}
		names := make([]string, 0, len(chains))
		for c := range chains {
			names = append(names, c)
		}
		slices.Sort(names)
		fmt.Fprintf(&b, "*%s\n", table)
		for _, c := range names {
			fmt.Fprintf(&b, ":%s\n", c)
			for _, r := range chains[c] {
				b.WriteString(r + "\n")
			}
		}
	}
	return b.String(), nil
}

// waitConverged waits until kproxy reports nothing pending and the node's
// ruleset equals a fresh full render of the apiserver's objects; it fails
// the test with the difference if that does not happen within a bound.
func (e *e2e) waitConverged(ctx context.Context, scratch, step string) string {
	e.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var got, want, why string
	for {
		if exited, err := e.kp.Exited(); exited {
			e.t.Fatalf("%s: kproxy exited (%v):\n%s", step, err, e.kp.Tail(40))
		}
		m, err := e.metrics()
		switch {
		case err != nil:
			why = "metrics: " + err.Error()
		case !synced(m):
			why = "kproxy reports pending changes"
		default:
			if want, err = e.expectedRules(ctx, scratch); err != nil {
				e.t.Fatalf("%s: %v", step, err)
			}
			if got, err = savedRules(e.node.Netns); err != nil {
				e.t.Fatalf("%s: %v", step, err)
			}
			if got == want {
				e.t.Logf("%s: converged, kernel == full render (%d chains, %d rules)", step, strings.Count(got, "\n:"), strings.Count(got, "\n-A"))
				return got
			}
			why = "kernel ruleset differs from a full render"
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not converged after 45s: %s\n--- kernel (node %s) ---\n%s--- full render ---\n%s--- diff (-kernel +render) ---\n%s",
				step, why, e.node.Name, got, want, lineDiff(got, want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var out []string
	for l, n := range ca {
		if n > cb[l] {
			out = append(out, "- "+l)
		}
	}
	for l, n := range cb {
		if n > ca[l] {
			out = append(out, "+ "+l)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n") + "\n"
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
