package iptables

import (
	"hash/maphash"
	"strings"
	"testing"
)

// TestTxnStringIsWhatIsSent: String is the restore input, and an invalid
// chain name is a sticky error that later valid input does not clear.
func TestTxnStringIsWhatIsSent(t *testing.T) {
	res := &rendered{shared: map[string]map[string]*body{tableNAT: {}, tableFilter: {}}}
	var b body
	b.add("KUBE-SERVICES", "-j", "RETURN")
	res.shared[tableNAT]["KUBE-SERVICES"] = &b
	tx := newTxn(res, true, nil, maphash.MakeSeed(), map[string][]string{tableNAT: {"KUBE-SVC-OLD"}})
	if tx.Err() != nil {
		t.Fatalf("valid transaction: %v", tx.Err())
	}
	want := "*nat\n:KUBE-SVC-OLD - [0:0]\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\n-X KUBE-SVC-OLD\nCOMMIT\n"
	if got := tx.String(); got != want || got != string(tx.restoreInput(nil)) {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	long := "KUBE-" + strings.Repeat("X", maxChainName)
	tx = newTxn(res, true, nil, maphash.MakeSeed(), map[string][]string{tableNAT: {long, "KUBE-SVC-OK"}})
	if tx.Err() == nil || !strings.Contains(tx.Err().Error(), long) {
		t.Errorf("Err() = %v, want the invalid chain name %s", tx.Err(), long)
	}
}
