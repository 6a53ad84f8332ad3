package nftables

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// netnsNFT runs every nft command of a knftables.Interface inside a test
// network namespace: the nft child process inherits the namespace of the
// OS thread that starts it.
type netnsNFT struct {
	knftables.Interface
	ns     string
	family proxier.Family
}

func newNetnsNFT(t *testing.T, family proxier.Family, ns string) *netnsNFT {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		testrig.SkipOrFail(t, "the nftables mode's kernel tests need nft in PATH (hack/install-deps.sh installs it)")
	}
	fam, err := nftFamily(family)
	if err != nil {
		t.Fatal(err)
	}
	n := &netnsNFT{ns: ns, family: family}
	if err := testrig.DoInNetns(ns, func() (err error) {
		n.Interface, err = newRealNFT(fam)
		return err
	}); err != nil {
		testrig.SkipOrFail(t, "nftables unusable in a test namespace: "+err.Error())
	}
	// An open netlink socket would keep the namespace alive.
	t.Cleanup(n.Interface.(*mergingNFT).netlink.Close)
	return n
}

func (n *netnsNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	return testrig.DoInNetns(n.ns, func() error { return n.Interface.Run(ctx, tx) })
}

// newTextWriter and sendText make the namespace's nft a textSender, as
// the real one is: the Proxier's syncs take the same path.
func (n *netnsNFT) newTextWriter() *textWriter { return n.Interface.(*mergingNFT).newTextWriter() }

func (n *netnsNFT) netlinkEnabled() bool { return n.Interface.(*mergingNFT).netlinkEnabled() }

func (n *netnsNFT) sendText(ctx context.Context, w *textWriter) (took time.Duration, err error) {
	err = testrig.DoInNetns(n.ns, func() error { took, err = n.Interface.(*mergingNFT).sendText(ctx, w); return err })
	return took, err
}

func (n *netnsNFT) Check(ctx context.Context, tx *knftables.Transaction) error {
	return testrig.DoInNetns(n.ns, func() error { return n.Interface.Check(ctx, tx) })
}

func (n *netnsNFT) List(ctx context.Context, objectType string) (out []string, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) { out, err = n.Interface.List(ctx, objectType); return err })
	return out, err
}

// CountRules counts with netlink from inside the namespace, as the
// Proxier does in its own.
func (n *netnsNFT) CountRules(ctx context.Context, chain string) (count int, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) {
		count, err = netlinkRuleCounter(n.family).CountRules(ctx, chain)
		return err
	})
	return count, err
}

func (n *netnsNFT) ListRules(ctx context.Context, chain string) (out []*knftables.Rule, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) { out, err = n.Interface.ListRules(ctx, chain); return err })
	return out, err
}

func (n *netnsNFT) ListElements(ctx context.Context, objectType, name string) (out []*knftables.Element, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) { out, err = n.Interface.ListElements(ctx, objectType, name); return err })
	return out, err
}

// newTestNetns is a network namespace of its own for a kernel test (the
// test is skipped without root).
func newTestNetns(t *testing.T, suffix string) string {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	return testrig.NewNetns(t, suffix)
}

// syncOnce makes a Proxier with opts and syncs snap, failing the test on
// any error.
func syncOnce(t *testing.T, opts Options, snap *proxier.Snapshot) *Proxier {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

// kernelRig is flowtest's 2-node topology and a Proxier programming
// node1's nftables through the real nft.
type kernelRig struct {
	topo  *testrig.Topology
	nft   *netnsNFT
	p     *Proxier
	probe flowtest.KernelProber
}

func newKernelRig(t *testing.T, family proxier.Family) *kernelRig {
	t.Helper()
	return newKernelRigWith(t, family, func(*Options) {})
}

// newKernelRigWith is newKernelRig with options adjusted by set.
func newKernelRigWith(t *testing.T, family proxier.Family, set func(*Options)) *kernelRig {
	t.Helper()
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	var topo *testrig.Topology
	opts := flowOptions()
	if family == proxier.IPv6 {
		topo, _ = flowtest.NewKernelTopologyIPv6(t)
		opts = flowOptionsIPv6()
	} else {
		topo, _ = flowtest.NewKernelTopology(t)
	}
	r := &kernelRig{topo: topo, nft: newNetnsNFT(t, family, topo.Node(1).Netns)}
	opts.NFT = r.nft
	set(&opts)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	r.probe = flowtest.KernelProber{Topo: topo, Dump: r.dump}
	if family == proxier.IPv6 {
		r.probe.Topo = topo.IPv6View()
	}
	return r
}

func (r *kernelRig) sync(t *testing.T, snap *proxier.Snapshot) {
	t.Helper()
	if _, err := r.p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// dump logs node1's ruleset, after a case failed.
func (r *kernelRig) dump(t *testing.T) {
	out, err := testrig.Exec(r.topo.Node(1).Netns, "nft", "list", "ruleset")
	t.Logf("nft list ruleset (%v):\n%s", err, out)
}

// TestKernelFlowTable runs the shared flow table against real nftables
// and real TCP and UDP packets, one scenario after another (each a full
// sync that flushes the previous scenario's chains), in IPv4 and IPv6.
func TestKernelFlowTable(t *testing.T) {
	t.Run("IPv4", func(t *testing.T) {
		r := newKernelRig(t, proxier.IPv4)
		r.probe.RunScenarios(t, func(t *testing.T, sc *flowtest.Scenario) { r.sync(t, sc.Snapshot()) })
	})
	t.Run("IPv6", func(t *testing.T) {
		r := newKernelRig(t, proxier.IPv6)
		r.probe.RunScenariosIPv6(t, func(t *testing.T, sc *flowtest.Scenario) { r.sync(t, sc.SnapshotIPv6()) })
	})
}

// TestKernelFlowTableInlineMaps is TestKernelFlowTable with every port of
// two or more endpoints choosing them with an inline map, as ports of many
// endpoints do.
func TestKernelFlowTableInlineMaps(t *testing.T) {
	inline := func(o *Options) { o.inlineMapAbove = 1 }
	t.Run("IPv4", func(t *testing.T) {
		r := newKernelRigWith(t, proxier.IPv4, inline)
		r.probe.RunScenarios(t, func(t *testing.T, sc *flowtest.Scenario) { r.sync(t, sc.Snapshot()) })
		r.sync(t, flowtest.Scenarios()[0].Snapshot())
		out, err := testrig.Exec(r.topo.Node(1).Netns, "nft", "list", "table", "ip", tableName)
		if err != nil || !strings.Contains(out, "dnat ip to numgen random mod 3 map {") {
			t.Errorf("no inline map in the table (%v):\n%s", err, out)
		}
	})
	t.Run("IPv6", func(t *testing.T) {
		r := newKernelRigWith(t, proxier.IPv6, inline)
		r.probe.RunScenariosIPv6(t, func(t *testing.T, sc *flowtest.Scenario) { r.sync(t, sc.SnapshotIPv6()) })
	})
}

// probeScenario probes each of sc's cases three times (IPv4).
func (r *kernelRig) probeScenario(t *testing.T, sc *flowtest.Scenario) {
	t.Helper()
	for _, c := range sc.Cases {
		pk, err := sc.Packet(&c)
		if err != nil {
			t.Fatal(err)
		}
		r.probe.Probe(t, &c, pk, 3)
	}
}

// TestKernelNodePortAddresses: with --nodeport-addresses, NodePorts answer
// on the local addresses inside the CIDRs (and the primary address), and
// not on the others: a connection to another address is not DNATed and
// refused by the node.
func TestKernelNodePortAddresses(t *testing.T) {
	sc := flowtest.Scenarios()[3]
	if sc.Name != "nodeport" {
		t.Fatalf("scenario 3 is %s, want nodeport", sc.Name)
	}
	for _, tc := range []struct {
		name    string
		entries []string
		answer  bool
	}{
		{"cidr", []string{"198.51.100.0/24"}, true},
		{"primary", []string{"primary"}, true},
		{"cidr and primary", []string{"198.51.100.0/24", "primary"}, true},
		{"other cidr", []string{"192.0.2.0/24"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newKernelRigWith(t, proxier.IPv4, func(o *Options) { o.NodePortAddresses = tc.entries })
			r.sync(t, sc.Snapshot())
			cases := sc
			if !tc.answer {
				cases.Cases = []flowtest.Case{sc.Cases[0]}
				cases.Cases[0].Want = flowtest.Reject
			}
			r.probeScenario(t, &cases)
		})
	}
}

// listTable is node1's table as nft prints it, handles left out.
func (r *kernelRig) listTable(t *testing.T) string {
	t.Helper()
	return listTableIn(t, r.topo.Node(1).Netns)
}

// listTableIn is the IPv4 table in namespace ns in testrig.CanonicalNFT
// form: objects in name order, elements sorted.
func listTableIn(t *testing.T, ns string) string {
	t.Helper()
	out, err := testrig.NFTRuleset(ns)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKernelResyncAndCleanup: switching between scenarios in the real
// kernel, with the stale chains' delay passed, leaves exactly the table a
// sync into an empty namespace writes (so flushed chains and stale
// affinity sets are deleted, and nft accepts the deletions); Cleanup then
// removes everything.
func TestKernelResyncAndCleanup(t *testing.T) {
	r := newKernelRig(t, proxier.IPv4)
	scs := flowtest.Scenarios()
	for _, sc := range scs {
		r.sync(t, sc.Snapshot())
	}
	last := scs[0].Snapshot() // basic: affinity sets and endpoint chains
	r.sync(t, last)
	time.Sleep(staleChainDelay + 100*time.Millisecond)
	r.sync(t, last)
	if len(r.p.stale) != 0 {
		t.Errorf("stale chains left: %v", r.p.stale)
	}
	got := r.listTable(t)
	ctx := context.Background()
	if err := r.p.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	r.sync(t, last)
	if want := r.listTable(t); got != want {
		t.Errorf("table after resyncs differs from a fresh sync's:\n%s", lineDiff(got, want))
	}
	opts := flowOptions()
	opts.NFT = r.nft
	for range 2 {
		if err := Cleanup(ctx, opts); err != nil {
			t.Fatal(err)
		}
	}
	if left, err := HasLeftovers(ctx, opts); err != nil || left {
		t.Errorf("HasLeftovers after Cleanup = %v, %v", left, err)
	}
	if out, err := testrig.Exec(r.topo.Node(1).Netns, "nft", "list", "ruleset"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("ruleset after Cleanup (%v):\n%s", err, out)
	}
}

// TestKernelBalancingAndAffinity: every endpoint of a Service is reached
// (numgen); a ClientIP-affinity Service keeps a client on one endpoint.
func TestKernelBalancingAndAffinity(t *testing.T) {
	t.Run("rules", func(t *testing.T) { checkBalancingAndAffinity(t, newKernelRig(t, proxier.IPv4)) })
	t.Run("inline-maps", func(t *testing.T) {
		checkBalancingAndAffinity(t, newKernelRigWith(t, proxier.IPv4, func(o *Options) { o.inlineMapAbove = 1 }))
	})
}

func checkBalancingAndAffinity(t *testing.T, r *kernelRig) {
	sc := flowtest.Scenarios()[0]
	r.sync(t, sc.Snapshot())
	for _, c := range sc.Cases {
		pk, _ := sc.Packet(&c)
		switch {
		case strings.HasPrefix(c.Name, "pod to ClusterIP balances"):
			seen := map[string]bool{}
			for i := 0; i < 4 && len(seen) < len(c.Endpoints); i++ {
				for e := range r.probe.Probe(t, &c, pk, 15) {
					seen[e] = true
				}
			}
			if len(seen) != len(c.Endpoints) {
				t.Errorf("balancing reached %v, want all of %v", seen, c.Endpoints)
			}
		case strings.HasPrefix(c.Name, "affinity"):
			if seen := r.probe.Probe(t, &c, pk, 12); len(seen) != 1 {
				t.Errorf("affinity: reached %v, want a single endpoint", seen)
			}
		}
	}
}
