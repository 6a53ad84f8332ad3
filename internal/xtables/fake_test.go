package xtables

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestFakeSetsAndFaults: rules matching a missing ipset are rejected
// through the SetExists hook, UsesSet sees the sets in use, and FailOnce
// fails one operation only.
func TestFakeSetsAndFaults(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	f.SetExists = func(name string) bool { return name == "S" }
	in := "*filter\n:KUBE-Y - [0:0]\n-A KUBE-Y -m set --match-set %s dst -j DROP\nCOMMIT\n"
	if err := f.Restore(ctx, []byte(strings.Replace(in, "%s", "NOPE", 1)), false); !IsRestoreError(err) {
		t.Errorf("rule matching a missing set: %v, want a RestoreError", err)
	}
	if err := f.Restore(ctx, []byte(strings.Replace(in, "%s", "S", 1)), false); err != nil {
		t.Fatal(err)
	}
	if !f.UsesSet("S") || f.UsesSet("NOPE") {
		t.Errorf("UsesSet: S %v, NOPE %v", f.UsesSet("S"), f.UsesSet("NOPE"))
	}
	injected := errors.New("injected")
	f.FailOn = FailOnce("EnsureRule", injected)
	if _, err := f.EnsureRule(ctx, Append, "filter", "INPUT", "-j", "KUBE-Y"); !errors.Is(err, injected) {
		t.Errorf("first EnsureRule: %v, want the injected error", err)
	}
	if added, err := f.EnsureRule(ctx, Append, "filter", "INPUT", "-j", "KUBE-Y"); !added || err != nil {
		t.Errorf("second EnsureRule: %v, %v", added, err)
	}
}

// TestFakeKeepsBuiltinChains: declaring a built-in chain in restore
// input does not flush it, as iptables-restore --noflush does not.
func TestFakeKeepsBuiltinChains(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	if _, err := f.EnsureRule(ctx, Prepend, "nat", "OUTPUT", "-j", "ACCEPT"); err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(ctx, []byte("*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"), false); err != nil {
		t.Fatal(err)
	}
	if got := f.Chain("nat", "OUTPUT"); len(got) != 1 {
		t.Errorf("nat OUTPUT after declaring it: %v", got)
	}
}
