package nftables

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/internal/testrig"
	"github.com/kproxy/kproxy/proxier"
)

// elementsTx is a transaction that makes a table with a set and a map and
// adds n elements to each, one operation per element.
func elementsTx(nft knftables.Interface, n int) *knftables.Transaction {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "a/b"})
	tx.Add(&knftables.Set{Name: "ips", Type: "ipv4_addr"})
	tx.Add(&knftables.Map{Name: "dests", Type: "ipv4_addr . inet_proto . inet_service : verdict"})
	ip := func(i int) string { return fmt.Sprintf("10.0.%d.%d", i/250, i%250+1) }
	for i := range n {
		tx.Add(&knftables.Element{Set: "ips", Key: []string{ip(i)}})
	}
	for i := range n {
		tx.Add(&knftables.Element{Map: "dests", Key: []string{ip(i), "tcp", "80"}, Value: []string{"goto a/b"}})
	}
	return tx
}

// TestKernelMergedElementAdds: element adds sent merged all reach the
// kernel; when nft refuses one, the line logged is the refused element's
// line of the text sent; a transaction with a sticky error is not sent;
// Check judges the text Run would send and applies nothing.
func TestKernelMergedElementAdds(t *testing.T) {
	ns := newTestNetns(t, "nftmerge")
	nft := newNetnsNFT(t, proxier.IPv4, ns)
	ctx := context.Background()
	if err := nft.Run(ctx, elementsTx(nft, 600)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ kind, name string }{{"set", "ips"}, {"map", "dests"}} {
		elems, err := nft.ListElements(ctx, c.kind, c.name)
		if err != nil || len(elems) != 600 {
			t.Errorf("%s %s: %d elements (%v), want 600", c.kind, c.name, len(elems), err)
		}
	}

	bad := elementsTx(nft, 600)
	bad.Add(&knftables.Element{Map: "dests", Key: []string{"10.0.0.9", "tcp", "80"}, Value: []string{"goto no/such-chain"}})
	err := nft.Run(ctx, bad)
	if err == nil {
		t.Fatal("an element naming a missing chain was accepted")
	}
	lines := offendingLines(err, sentText(err, bad))
	if len(lines) != 1 || !strings.Contains(lines[0], "no/such-chain") || len(lines[0]) > 400 {
		t.Errorf("offending lines %q: want one short excerpt naming the bad element (error %v)", lines, err)
	}
	if strings.Contains(err.Error(), "goto a/b") || len(err.Error()) > 400 {
		t.Errorf("the error echoes the sent text: %.500s", err)
	}

	sticky := nft.NewTransaction()
	sticky.Add(&knftables.Chain{}) // no name: knftables records an error
	sticky.Add(&knftables.Chain{Name: "c/d"})
	if err := nft.Run(ctx, sticky); err == nil || !strings.Contains(err.Error(), "invalid transaction") {
		t.Errorf("a transaction with a sticky error: Run = %v, want it refused unsent", err)
	}
	if chains, err := nft.List(ctx, "chains"); err != nil || strings.Contains(strings.Join(chains, " "), "c/d") {
		t.Errorf("chains after the refused transaction: %q (%v)", chains, err)
	}

	if err := nft.Check(ctx, bad); err == nil {
		t.Error("Check accepted an element naming a missing chain")
	}
	checked := nft.NewTransaction()
	checked.Add(&knftables.Chain{Name: "e/f"})
	if err := nft.Check(ctx, checked); err != nil {
		t.Errorf("Check of a valid transaction: %v", err)
	}
	if chains, err := nft.List(ctx, "chains"); err != nil || strings.Contains(strings.Join(chains, " "), "e/f") {
		t.Errorf("chains after Check: %q (%v); Check applied the transaction", chains, err)
	}
}

// rawTwinNFT runs every transaction twice: compacted, through the real
// nft seam in one namespace, and as knftables' own text, through a bare
// `nft -f`, in another. Both must accept or refuse it alike. The syncs'
// text, written straight by a textWriter, is compared with knftables'
// text of the same operations (the writer's mirror).
type rawTwinNFT struct {
	*netnsNFT
	t     *testing.T
	rawNS string
}

func (n *rawTwinNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	return n.twin(n.netnsNFT.Run(ctx, tx), tx.String())
}

func (n *rawTwinNFT) newTextWriter() *textWriter {
	w := n.netnsNFT.newTextWriter()
	w.mirror = n.NewTransaction()
	return w
}

func (n *rawTwinNFT) sendText(ctx context.Context, w *textWriter) (time.Duration, error) {
	took, err := n.netnsNFT.sendText(ctx, w)
	return took, n.twin(err, w.mirror.String())
}

// twin loads knftables' text into the raw namespace and checks that nft
// judged it as it judged the compact text (err).
func (n *rawTwinNFT) twin(err error, raw string) error {
	_, rawErr := testrig.ExecInput(n.rawNS, raw, "nft", "-f", "-")
	if (err == nil) != (rawErr == nil) {
		n.t.Errorf("compacted transaction: %v; as knftables wrote it: %v", err, rawErr)
	}
	return err
}

// TestKernelCompactTextLoadsTheSame: every scenario of the flow table and
// one of many Services (long enough for a table block at the default
// minimum), each reached by a partial sync and then by a full sync, with
// the clock moving on so that stale chains are deleted, leaves the same
// ruleset whether nft is sent the compact text (table blocks for runs of
// any length, or only for long ones) or knftables' one command per line.
func TestKernelCompactTextLoadsTheSame(t *testing.T) {
	for _, fam := range []proxier.Family{proxier.IPv4, proxier.IPv6} {
		scenarios := append(flowtest.Scenarios(), manyServices(600))
		opts := flowOptions()
		if fam == proxier.IPv6 {
			scenarios = flowtest.ScenariosIPv6()
			scenarios = append(scenarios, flowtest.ScenarioIPv6(manyServices(600)))
			opts = flowOptionsIPv6()
		}
		for _, minRun := range []int{1, minBlockLines} {
			t.Run(fmt.Sprintf("%s/min-run-%d", fam, minRun), func(t *testing.T) {
				compact, raw := newTestNetns(t, "nftcompact"), newTestNetns(t, "nftraw")
				nft := newNetnsNFT(t, fam, compact)
				nft.Interface.(*mergingNFT).minBlockLines = minRun
				opts.NFT = &rawTwinNFT{netnsNFT: nft, t: t, rawNS: raw}
				p, err := New(opts)
				if err != nil {
					t.Fatal(err)
				}
				syncThrough(t, p, fam, scenarios, func(name string, full bool) {
					if got, want := rulesetIn(t, compact), rulesetIn(t, raw); got != want {
						t.Fatalf("%s (full %v): rulesets differ:\n%s", name, full, lineDiff(got, want))
					}
				})
			})
		}
	}
}

// changedBetween are the Services of either snapshot (a or b may be nil).
func changedBetween(a, b *proxier.Snapshot) proxier.NameSet {
	changed := proxier.NameSet{}
	for _, s := range []*proxier.Snapshot{a, b} {
		if s != nil {
			for name := range s.Services {
				changed[name] = struct{}{}
			}
		}
	}
	return changed
}

// manyServices is a scenario of n ClusterIP Services with two endpoints
// each.
func manyServices(n int) flowtest.Scenario {
	sc := flowtest.Scenario{Name: "many"}
	for i := range n {
		name := fmt.Sprintf("many-%d", i)
		eps := []flowtest.EP{
			{IP: fmt.Sprintf("10.244.2.%d", i%250+1), Node: flowtest.OtherNode},
			{IP: fmt.Sprintf("10.244.3.%d", i%250+1), Node: flowtest.OtherNode},
		}
		sc.Services = append(sc.Services, flowtest.NewService(name, fmt.Sprintf("10.96.%d.%d", 10+i/250, i%250+1),
			[]v1.ServicePort{flowtest.Port("http", v1.ProtocolTCP, 80, 0)}))
		sc.Slices = append(sc.Slices, flowtest.NewSlice(name+"-1", name,
			[]discovery.EndpointPort{flowtest.SlicePort("http", v1.ProtocolTCP, 8080)}, eps...))
	}
	return sc
}

// rulesetIn is ns's whole ruleset, canonically ordered.
func rulesetIn(t *testing.T, ns string) string {
	t.Helper()
	out, err := testrig.Exec(ns, "nft", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	return testrig.CanonicalNFT(out)
}
