package nftables

import (
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
