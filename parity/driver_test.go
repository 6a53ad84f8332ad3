package parity

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kproxy/kproxy/internal/testrig"
)

var (
	seedCount = flag.Int("parity.seeds", 0, "run seeds 1..N instead of the fixed ones")
	oneSeed   = flag.Uint64("parity.seed", 0, "run only this seed")
)

// fixedSeeds run by default: a few, so that the test stays well under a
// minute.
var fixedSeeds = []uint64{1, 2}

// Sizes of a world: Services created at first, then changes in one batch.
const (
	worldServices = 12
	worldChanges  = 10
)

// mode is what the parity test needs to know about one proxy mode: its
// flags, the flag variants each seed is compared under, how to read a
// proxy's rules of one IP family and parse them, how to compare them, and
// the deviations tolerated.
type mode struct {
	name       string   // --proxy-mode
	flags      []string // beyond commonFlags
	variants   []variant
	dump       func(ns string, family v1.IPFamily) (string, error)
	parse      func(dump string) ruleset
	layout     layout
	deviations []deviation
}

// variant is one flag set each seed is compared under, by its own pair of
// proxies (every pair sees the same worlds).
type variant struct {
	name  string
	flags []string
}

// families are compared one at a time.
var families = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}

// commonFlags are the flags of every mode, for both proxies. Conntrack
// sysctls are host-wide (some) and not what is compared: left alone.
func commonFlags(cp *testrig.ControlPlane) []string {
	return []string{
		"--kubeconfig=" + cp.KubeProxyKubeconfig,
		"--hostname-override=" + thisNode,
		"--cluster-cidr=" + testrig.ClusterCIDR + "," + testrig.ClusterCIDRv6,
		"--metrics-bind-address=" + testrig.KproxyMetricsAddr,
		"--healthz-bind-address=" + testrig.KproxyHealthzAddr,
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--iptables-min-sync-period=100ms",
		"--v=2",
	}
}

// runParity is the differential test of one mode. One control plane
// serves a pair of proxies per flag variant: upstream in one node
// namespace, kproxy in the next, both as node "node1" (zone-a) with the
// same flags. For each seed a random world is created in its own
// Kubernetes namespace, both proxies settle, and their rules are compared
// for IPv4 and IPv6; then a random batch of changes, and the comparison
// again; then the world is deleted. Only the mode's deviations are
// tolerated.
func runParity(t *testing.T, m mode) {
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo, cp, bin := testrig.StartCluster(t, testrig.TopologyOptions{Nodes: 2 * len(m.variants), PodsPerNode: 1, IPv6: true})
	upstream := filepath.Join(testrig.RequireUpstream(t), testrig.BinKubeProxy)
	ctx := t.Context()
	setZone(ctx, t, cp, thisNode, thisZone)

	flags := append(commonFlags(cp), "--proxy-mode="+m.name)
	flags = append(flags, m.flags...)
	ps := proxies{mode: m}
	for i, v := range m.variants {
		args := append(slices.Clone(flags), v.flags...)
		ps.pairs = append(ps.pairs, pair{
			name: v.name,
			up:   testrig.StartProcess(t, topo.Node(2*i+1).Netns, append([]string{upstream}, args...)...),
			kp:   testrig.StartProcess(t, topo.Node(2*i+2).Netns, append([]string{bin}, args...)...),
		})
	}
	for _, seed := range seeds() {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			w := newWorld(seed, cp.Client)
			defer func() {
				if t.Failed() {
					t.Logf("world of seed %d:\n%s", seed, strings.Join(w.log, "\n"))
				}
			}()
			w.populate(ctx, t, worldServices)
			ps.compare(ctx, t, w, "created")
			w.change(ctx, t, worldChanges)
			ps.compare(ctx, t, w, "after a batch of changes")
			w.clear(ctx, t)
			ps.compare(ctx, t, w, "deleted")
		})
	}
}

// seeds are the fixed seeds, or those the flags ask for.
func seeds() []uint64 {
	switch {
	case *oneSeed != 0:
		return []uint64{*oneSeed}
	case *seedCount > 0:
		var out []uint64
		for i := 1; i <= *seedCount; i++ {
			out = append(out, uint64(i))
		}
		return out
	}
	return fixedSeeds
}

// pair is the two proxies under comparison with one variant's flags.
type pair struct {
	name   string
	up, kp *testrig.Process
}

// proxies is every pair under comparison, all in one mode.
type proxies struct {
	mode  mode
	pairs []pair
}

// compare waits until every proxy has settled, then compares each pair's
// rules in both families. A difference is looked at again after another
// settle (a proxy may still have had a change queued), and reported if it
// stays.
func (ps proxies) compare(ctx context.Context, t *testing.T, w *world, when string) {
	t.Helper()
	var diffs []string
	for attempt := 0; attempt < 3; attempt++ {
		saved := ps.settle(ctx, t)
		diffs = diffs[:0]
		for _, p := range ps.pairs {
			for i, f := range families {
				u := ps.mode.rules(saved[p.up][i], w.services(), f)
				k := ps.mode.rules(saved[p.kp][i], w.services(), f)
				if u.empty() {
					diffs = append(diffs, fmt.Sprintf("%s, %s: kube-proxy wrote no rules (nothing to compare)", p.name, f))
				} else if d := diffRules(u, k, ps.mode.layout); d != "" {
					diffs = append(diffs, fmt.Sprintf("%s, %s:\n%s", p.name, f, d))
				}
			}
		}
		if len(diffs) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("%s: kproxy's %s rules differ from kube-proxy's:\n%s", when, ps.mode.name, strings.Join(diffs, "\n"))
}

// rules parses one family's dump and leaves out what the mode's
// deviations select.
func (m mode) rules(dump string, svcs []*v1.Service, family v1.IPFamily) ruleset {
	return applyDeviations(m.parse(dump), svcs, family, m.deviations, m.layout)
}

// settle waits until no proxy has a change pending and no proxy's rules
// changed for a second, and returns every proxy's dumps (per family).
func (ps proxies) settle(ctx context.Context, t *testing.T) map[*testrig.Process][]string {
	t.Helper()
	const quiet = time.Second
	deadline := time.Now().Add(60 * time.Second)
	var procs []*testrig.Process
	for _, p := range ps.pairs {
		procs = append(procs, p.up, p.kp)
	}
	var last string
	stableSince := time.Now()
	for {
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		states := ps.look(procs)
		saved := map[*testrig.Process][]string{}
		var all strings.Builder
		var busy []string
		for i, pr := range procs {
			st := states[i]
			if st.err != nil {
				t.Fatal(st.err)
			}
			saved[pr] = st.dumps
			all.WriteString(strings.Join(st.dumps, ""))
			if st.busy != "" {
				busy = append(busy, pr.Name+" in "+pr.Netns+": "+st.busy)
			}
		}
		if all.String() != last || len(busy) > 0 {
			last, stableSince = all.String(), time.Now()
		}
		if time.Since(stableSince) >= quiet {
			return saved
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxies did not settle within a minute (busy: %q)", busy)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// procState is one look at a proxy: its dumps per family, why it is not
// idle ("" when it is), or what went wrong.
type procState struct {
	dumps []string
	busy  string
	err   error
}

// look reads every proxy's rules and metrics at once (one goroutine per
// proxy: each read runs commands in the proxy's namespace, and the poll
// is only as slow as the slowest proxy).
func (ps proxies) look(procs []*testrig.Process) []procState {
	states := make([]procState, len(procs))
	var wg sync.WaitGroup
	for i, pr := range procs {
		wg.Go(func() {
			if done, err := pr.Exited(); done {
				states[i].err = fmt.Errorf("%s exited: %v\n%s", pr.Name, err, pr.Tail(30))
				return
			}
			for _, f := range families {
				d, err := ps.mode.dump(pr.Netns, f)
				if err != nil {
					states[i].err = fmt.Errorf("%s: %w", pr.Name, err)
					return
				}
				states[i].dumps = append(states[i].dumps, d)
			}
			states[i].busy = idle(pr.Netns)
		})
	}
	wg.Wait()
	return states
}

// idle says why the proxy in ns is not idle yet, or "" when it has synced
// and has no Service or endpoint change pending (kube-proxy's metrics,
// which kproxy shares).
func idle(ns string) string {
	m, err := testrig.ScrapeMetrics(ns, testrig.KproxyMetricsAddr)
	if err != nil {
		return err.Error()
	}
	synced := false
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"):
			synced = synced || v > 0
		case strings.HasPrefix(k, "kubeproxy_sync_proxy_rules_endpoint_changes_pending"),
			strings.HasPrefix(k, "kubeproxy_sync_proxy_rules_service_changes_pending"):
			if v != 0 {
				return fmt.Sprintf("%s = %v", k, v)
			}
		}
	}
	if !synced {
		return "not synced yet"
	}
	return ""
}

// setZone labels a Node with its zone, for topology hints.
func setZone(ctx context.Context, t *testing.T, cp *testrig.ControlPlane, node, zone string) {
	t.Helper()
	n, err := cp.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels[v1.LabelTopologyZone] = zone
	if _, err := cp.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
