package iptables

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// kernelRig is flowtest's 2-node topology (echo servers named "ip:port"
// on every pod) and a Proxier programming node1 through the real binaries.
type kernelRig struct {
	topo   *testrig.Topology
	kernel *xtables.Runner
	p      *Proxier
	probe  flowtest.KernelProber
}

func newKernelRig(t *testing.T) *kernelRig {
	t.Helper()
	return newKernelRigWith(t, flowOptions())
}

func newKernelRigWith(t *testing.T, opts Options) *kernelRig {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	topo, _ := flowtest.NewKernelTopology(t)
	k, err := xtables.NewRunner(xtables.RunnerConfig{Family: proxier.IPv4, Netns: topo.Node(1).Netns})
	if err != nil {
		t.Fatal(err)
	}
	opts.Kernel = k
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &kernelRig{topo: topo, kernel: k, p: p, probe: flowtest.KernelProber{Topo: topo}}
}

func (r *kernelRig) sync(t *testing.T, snap *proxier.Snapshot, changed proxier.NameSet, full bool) {
	t.Helper()
	if _, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Changed: changed, Full: full}); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// probeCase sends tries fresh connections and checks each against the case;
// it returns the endpoints seen.
func (r *kernelRig) probeCase(t *testing.T, c *flowtest.Case, pk flowtest.Packet, tries int) map[string]bool {
	t.Helper()
	return r.probe.Probe(t, c, pk, tries)
}

// TestKernelFlowTable runs the shared flow table against real
// iptables-restore and real packets, one scenario after another (each a
// full sync that also deletes the previous scenario's chains), in the flat
// and in the bucketed layout. After each sync, every chain read back with
// iptables-save equals what kproxy rendered byte for byte (else full
// syncs would rewrite it every time).
func TestKernelFlowTable(t *testing.T) {
	t.Run("flat", func(t *testing.T) { testKernelFlowTable(t, newKernelRig(t)) })
	t.Run("bucketed", func(t *testing.T) { testKernelFlowTable(t, newKernelRigWith(t, bucketedOptions())) })
}

// checkReadBack compares the kernel's chains with what was written.
func (r *kernelRig) checkReadBack(t *testing.T) {
	t.Helper()
	cur, saved, err := r.p.readKernel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Full syncs find the jump rules and canaries in the save output they
	// read, instead of asking iptables rule by rule.
	for _, j := range jumpRules {
		if !saved.hasJump(j) || !saved.hasChain(j.table, j.to) {
			t.Errorf("jump rule not found in iptables-save output as %q", j.saveLine())
		}
	}
	for _, table := range canaryTables {
		if !saved.hasChain(table, chainCanary) {
			t.Errorf("canary chain not found in iptables-save -t %s", table)
		}
	}
	for table, chains := range r.p.written {
		for c, sum := range chains {
			if cur[table][c] != sum {
				out, _ := testrig.Exec(r.topo.Node(1).Netns, "iptables", "-t", table, "-S", c)
				t.Errorf("%s/%s reads back differently from what was rendered; iptables -S:\n%s", table, c, out)
			}
		}
	}
}

func testKernelFlowTable(t *testing.T, r *kernelRig) {
	r.probe.RunScenarios(t, func(t *testing.T, sc *flowtest.Scenario) {
		r.sync(t, sc.Snapshot(), nil, true)
		r.checkReadBack(t)
	})
}

// TestKernelBalancingAndAffinity: every ready endpoint is reached; a
// ClientIP-affinity Service keeps sending a client to one endpoint.
func TestKernelBalancingAndAffinity(t *testing.T) {
	r := newKernelRig(t)
	sc := flowtest.Scenarios()[0] // basic
	r.sync(t, sc.Snapshot(), nil, true)
	for _, c := range sc.Cases {
		pk, _ := sc.Packet(&c)
		switch {
		case strings.HasPrefix(c.Name, "pod to ClusterIP balances"):
			var seen map[string]bool
			for i := 0; i < 4 && len(seen) < len(c.Endpoints); i++ {
				for e := range r.probeCase(t, &c, pk, 15) {
					if seen == nil {
						seen = map[string]bool{}
					}
					seen[e] = true
				}
			}
			if len(seen) != len(c.Endpoints) {
				t.Errorf("balancing reached %v, want all of %v", seen, c.Endpoints)
			}
		case strings.HasPrefix(c.Name, "affinity"):
			if seen := r.probeCase(t, &c, pk, 12); len(seen) != 1 {
				t.Errorf("affinity: reached %v, want a single endpoint", seen)
			}
		}
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

var builtinRule = regexp.MustCompile(`^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) `)

// ourRules returns iptables-save output of nat and filter, counters
// zeroed, keeping only lines that mention our chains (KUBE-* and
// KPROXY-*, e.g. the dispatch buckets). Jump rules in
// built-in chains are sorted: their relative order with kubelet's
// KUBE-FIREWALL jumps (which Cleanup keeps) does not matter.
func ourRules(t *testing.T, k Kernel) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{tableFilter, tableNAT} {
		out, err := k.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		var jumps []string
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case !testrig.MentionsOwnChain(l):
			case builtinRule.MatchString(l):
				jumps = append(jumps, l)
			default:
				b.WriteString(counters.ReplaceAllString(l, "[0:0]") + "\n")
			}
		}
		sort.Strings(jumps)
		b.WriteString(strings.Join(jumps, "\n") + "\n")
	}
	return b.String()
}

// TestKernelPartialEqualsFull: after partial syncs through several
// scenarios' changes, iptables-save equals that of a fresh full sync.
func TestKernelPartialEqualsFull(t *testing.T) {
	r := newKernelRig(t)
	ctx := context.Background()
	tr := newTracker()
	scs := flowtest.Scenarios()
	for i, sc := range scs {
		for _, s := range sc.Services {
			tr.OnService(nil, s)
		}
		for _, s := range sc.Slices {
			tr.OnEndpointSlice(nil, s)
		}
		if i > 0 { // drop the previous scenario
			for _, s := range scs[i-1].Services {
				tr.OnService(s, nil)
			}
			for _, s := range scs[i-1].Slices {
				tr.OnEndpointSlice(s, nil)
			}
		}
		co := tr.Checkout()
		snap := co.Snapshots[proxier.IPv4]
		r.sync(t, snap, co.Changed[proxier.IPv4], i == 0)
		partial := ourRules(t, r.kernel)
		if err := r.p.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		r.sync(t, snap, nil, true)
		if full := ourRules(t, r.kernel); full != partial {
			t.Fatalf("after %s: partial sync state differs from a full sync:\n--- partial\n%s--- full\n%s", sc.Name, partial, full)
		}
	}
}

// corruptingKernel makes the next restore invalid.
type corruptingKernel struct{ Kernel }

func (c corruptingKernel) Restore(ctx context.Context, data []byte, counters bool) error {
	bad := strings.Replace(string(data), "*nat\n", "*nat\n:KUBE-BROKEN - [0:0]\n-A KUBE-BROKEN -j NO-SUCH-CHAIN\n", 1)
	return c.Kernel.Restore(ctx, []byte(bad), counters)
}

// TestKernelCanaryAndFailedRestore: a rejected restore keeps the previous
// rules (and traffic); flushing our chains is seen by the canary.
func TestKernelCanaryAndFailedRestore(t *testing.T) {
	r := newKernelRig(t)
	ctx := context.Background()
	sc := flowtest.Scenarios()[0]
	r.sync(t, sc.Snapshot(), nil, true)
	before := ourRules(t, r.kernel)

	broken := &Proxier{opts: r.p.opts, kernel: corruptingKernel{r.kernel}, seed: r.p.seed, written: r.p.written}
	_, err := broken.Sync(ctx, proxier.SyncRequest{Snapshot: &proxier.Snapshot{Family: proxier.IPv4, Node: sc.Snapshot().Node}, Full: true})
	if !xtables.IsRestoreError(err) {
		t.Fatalf("sync with a broken restore: %v, want a RestoreError", err)
	}
	if after := ourRules(t, r.kernel); after != before {
		t.Errorf("a failed restore changed the rules:\n%s", after)
	}
	c := sc.Cases[0]
	pk, _ := sc.Packet(&c)
	r.probeCase(t, &c, pk, 2)

	if flushed, err := r.p.Flushed(ctx); err != nil || flushed {
		t.Fatalf("Flushed = %v, %v before any flush", flushed, err)
	}
	if _, err := testrig.Exec(r.topo.Node(1).Netns, "iptables", "-w", "-t", "nat", "-X", chainCanary); err != nil {
		t.Fatal(err)
	}
	if flushed, err := r.p.Flushed(ctx); err != nil || !flushed {
		t.Fatalf("Flushed = %v, %v after the canary was deleted, want true", flushed, err)
	}
	r.sync(t, sc.Snapshot(), nil, true)
	if flushed, _ := r.p.Flushed(ctx); flushed {
		t.Errorf("canary not recreated by a full sync")
	}
	if err := r.p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := ourRules(t, r.kernel); testrig.MentionsOwnChain(strings.ReplaceAll(left, "KUBE-FIREWALL", "")) {
		t.Errorf("cleanup left:\n%s", left)
	}
}
