package nftables

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// TestTransactionTextStickyError pins how transactionText learns of
// knftables' sticky error (the "# ERROR: " comment Transaction.String
// ends with): a transaction with an invalid operation is refused, a valid
// one is its text.
func TestTransactionTextStickyError(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, tableName)
	bad := fake.NewTransaction()
	bad.Add(&knftables.Chain{Name: "a/b"})
	bad.Add(&knftables.Chain{}) // no name
	if text, err := transactionText(bad); err == nil || !strings.Contains(err.Error(), "invalid transaction") {
		t.Errorf("invalid operation: text %q, err %v; want it refused", text, err)
	}
	good := fake.NewTransaction()
	good.Add(&knftables.Chain{Name: "a/b"})
	text, err := transactionText(good)
	if err != nil || text != "add chain ip kube-proxy a/b\n" {
		t.Errorf("valid transaction: %q, %v", text, err)
	}
}

// TestMergingNFTSendsCompactText: Run and Check start nft with the
// compact text on stdin, Check with --check; nft's error comes back with
// the text sent.
func TestMergingNFTSendsCompactText(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "nft")
	body := "#!/bin/sh\necho \"$@\" > " + dir + "/args\ncat > " + dir + "/stdin\nsleep 0.05\n" +
		"[ -e " + dir + "/fail ] && { echo 'Error: refused' >&2; exit 1; }\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	n := &mergingNFT{Interface: knftables.NewFake(knftables.IPv4Family, tableName), family: knftables.IPv4Family,
		path: script, minBlockLines: 1}
	tx := n.NewTransaction()
	tx.Add(&knftables.Chain{Name: "a/b"})
	tx.Add(&knftables.Rule{Chain: "a/b", Rule: "counter"})
	want := compactText(tx.String(), 1)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ctx := context.Background()
	for _, c := range []struct {
		args string
		send func(context.Context, *knftables.Transaction) error
	}{{"-f -\n", n.Run}, {"--check -f -\n", n.Check}} {
		if err := c.send(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if got := read("args"); got != c.args {
			t.Errorf("nft started with %q, want %q", got, c.args)
		}
		if got := read("stdin"); got != want || !strings.Contains(got, "\tchain a/b {") {
			t.Errorf("nft was sent %q, want %q", got, want)
		}
	}
	// A sync's text goes the same way, and nft's run is timed.
	w := n.newTextWriter()
	w.Add(&knftables.Chain{Name: "a/b"})
	w.Add(&knftables.Rule{Chain: "a/b", Rule: "counter"})
	took, err := n.sendText(ctx, w)
	if err != nil || read("args") != "-f -\n" || read("stdin") != want {
		t.Errorf("sendText: %v, nft started with %q and sent %q, want %q", err, read("args"), read("stdin"), want)
	}
	if took < 50*time.Millisecond || took > 10*time.Second {
		t.Errorf("nft ran for %v by sendText, want the script's 50ms sleep and more", took)
	}
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = n.Run(ctx, tx)
	if err == nil || err.Error() != "Error: refused" || sentText(err, tx) != want {
		t.Errorf("refused run: %v (sent %q)", err, sentText(err, tx))
	}
}

// timedNFT is a Fake taking syncs as text, whose every nft run took took.
type timedNFT struct {
	*knftables.Fake
	took time.Duration
}

func (n *timedNFT) newTextWriter() *textWriter {
	w := newTextWriter(n.Fake, knftables.IPv4Family, minBlockLines)
	w.mirror = n.Fake.NewTransaction()
	return w
}

func (n *timedNFT) sendText(ctx context.Context, w *textWriter) (time.Duration, error) {
	return n.took, n.Fake.Run(ctx, w.mirror)
}

// TestSyncReportsNFTRunTime: a sync's KernelWrite is the nft process's
// run time as sendText reports it, full or partial, and zero when a
// sync sends nothing.
func TestSyncReportsNFTRunTime(t *testing.T) {
	const took = 7 * time.Second
	opts := flowOptions()
	opts.NFT = &timedNFT{Fake: knftables.NewFake(knftables.IPv4Family, tableName), took: took}
	opts.Metrics = NewMetrics(nil)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	scs := flowtest.Scenarios()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  proxier.SyncRequest
		want time.Duration
	}{
		{"full", proxier.SyncRequest{Snapshot: scs[0].Snapshot(), Full: true}, took},
		{"partial", proxier.SyncRequest{Snapshot: scs[1].Snapshot(), Changed: allNames(scs[1].Snapshot())}, took},
		{"nothing to send", proxier.SyncRequest{Snapshot: scs[1].Snapshot()}, 0},
	} {
		res, err := p.Sync(ctx, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.KernelWrite != c.want {
			t.Errorf("%s sync: KernelWrite %v, want %v", c.name, res.KernelWrite, c.want)
		}
	}
}
