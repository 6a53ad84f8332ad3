package nftables

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
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
	body := "#!/bin/sh\necho \"$@\" > " + dir + "/args\ncat > " + dir + "/stdin\n" +
		"[ -e " + dir + "/fail ] && { echo 'Error: refused' >&2; exit 1; }\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	n := &mergingNFT{Interface: knftables.NewFake(knftables.IPv4Family, tableName), path: script, minBlockLines: 1}
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
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := n.Run(ctx, tx)
	if err == nil || err.Error() != "Error: refused" || sentText(err, tx) != want {
		t.Errorf("refused run: %v (sent %q)", err, sentText(err, tx))
	}
}
