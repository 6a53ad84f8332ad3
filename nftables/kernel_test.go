package nftables

import (
	"context"
	"os/exec"
	"testing"

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
	ns string
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
	n := &netnsNFT{ns: ns}
	if err := testrig.DoInNetns(ns, func() (err error) {
		n.Interface, err = knftables.New(fam, tableName)
		return err
	}); err != nil {
		testrig.SkipOrFail(t, "nftables unusable in a test namespace: "+err.Error())
	}
	return n
}

func (n *netnsNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	return testrig.DoInNetns(n.ns, func() error { return n.Interface.Run(ctx, tx) })
}

func (n *netnsNFT) Check(ctx context.Context, tx *knftables.Transaction) error {
	return testrig.DoInNetns(n.ns, func() error { return n.Interface.Check(ctx, tx) })
}

func (n *netnsNFT) List(ctx context.Context, objectType string) (out []string, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) { out, err = n.Interface.List(ctx, objectType); return err })
	return out, err
}

func (n *netnsNFT) ListRules(ctx context.Context, chain string) (out []*knftables.Rule, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) { out, err = n.Interface.ListRules(ctx, chain); return err })
	return out, err
}

func (n *netnsNFT) ListElements(ctx context.Context, objectType, name string) (out []*knftables.Element, err error) {
	err = testrig.DoInNetns(n.ns, func() (err error) { out, err = n.Interface.ListElements(ctx, objectType, name); return err })
	return out, err
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
