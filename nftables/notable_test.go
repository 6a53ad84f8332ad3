package nftables

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// sentNFT is the Fake, keeping the text of every transaction it runs.
type sentNFT struct {
	knftables.Interface
	sent []string
}

func (n *sentNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	n.sent = append(n.sent, tx.String())
	return n.Interface.Run(ctx, tx)
}

// TestFirstSyncIntoNoTable: with no table, the first sync flushes and
// deletes nothing (nothing is there) and leaves what a sync over a table
// leaves; a table holding only a set is a table: kube-proxy's leftover
// set is deleted.
func TestFirstSyncIntoNoTable(t *testing.T) {
	snap := flowtest.Scenarios()[0].Snapshot()
	sync := func(fake *knftables.Fake) string {
		nft := &sentNFT{Interface: fake}
		opts := flowOptions()
		opts.NFT, opts.Metrics = nft, NewMetrics(nil)
		p, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Sync(context.Background(), proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
			t.Fatal(err)
		}
		return nft.sent[len(nft.sent)-1]
	}
	fresh := knftables.NewFake(knftables.IPv4Family, tableName)
	text := sync(fresh)
	for _, verb := range []string{"flush ", "delete "} {
		if strings.Contains(text, "\n"+verb) {
			t.Errorf("a first sync with no table sends %q commands:\n%s", verb, text)
		}
	}

	withSet := knftables.NewFake(knftables.IPv4Family, tableName)
	tx := withSet.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("rules for kube-proxy")})
	tx.Add(&knftables.Set{Name: setNodePortIPs, Type: "ipv4_addr"})
	if err := withSet.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	text = sync(withSet)
	if !strings.Contains(text, "delete set ip kube-proxy "+setNodePortIPs) {
		t.Errorf("a table holding only %s: the set is not deleted:\n%s", setNodePortIPs, text)
	}
	if got, want := withSet.Dump(), fresh.Dump(); got != want {
		t.Errorf("sync over a table with a leftover set differs from one into no table:\n%s", lineDiff(got, want))
	}

	empty := knftables.NewFake(knftables.IPv4Family, tableName)
	tx = empty.NewTransaction()
	tx.Add(&knftables.Table{})
	if err := empty.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	if text = sync(empty); !strings.Contains(text, "\nflush chain ip kube-proxy "+chainServices) {
		t.Errorf("an empty table is taken for no table: nothing flushed:\n%s", text)
	}
}

// TestIsNoEntry: the listing errors that mean "no such table", as
// knftables' Fake and google/nftables (only in its message) report it.
func TestIsNoEntry(t *testing.T) {
	for err, want := range map[error]bool{
		fmt.Errorf("receiveAckAware: %v", syscall.ENOENT): true,
		fmt.Errorf("list: %w", syscall.ENOENT):            true,
		fmt.Errorf("receiveAckAware: %v", syscall.EPERM):  false,
		errors.New("timeout"):                             false,
	} {
		if got := isNoEntry(err); got != want {
			t.Errorf("isNoEntry(%q) = %v, want %v", err, got, want)
		}
	}
	_, err := knftables.NewFake(knftables.IPv4Family, tableName).List(context.Background(), "sets")
	if err == nil || !isNoEntry(err) {
		t.Errorf("the Fake's listing of a missing table: %v, want a no-entry error", err)
	}
}
