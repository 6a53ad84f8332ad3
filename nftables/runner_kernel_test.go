package nftables

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

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
// line of the text sent; a transaction with a sticky error is not sent.
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
}
