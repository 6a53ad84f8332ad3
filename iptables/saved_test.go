package iptables

import (
	"context"
	"github.com/kproxy/kproxy/internal/xtables"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// countingKernel counts the single-rule and single-chain commands (one
// iptables exec each on a real kernel).
type countingKernel struct {
	*Fake
	single int
}

func (k *countingKernel) EnsureChain(ctx context.Context, table, chain string) error {
	k.single++
	return k.Fake.EnsureChain(ctx, table, chain)
}

func (k *countingKernel) EnsureRule(ctx context.Context, pos xtables.Position, table, chain string, rule ...string) (bool, error) {
	k.single++
	return k.Fake.EnsureRule(ctx, pos, table, chain, rule...)
}

// TestFullSyncOverExistingRulesRunsNoSingleCommands: a full sync over the
// rules a previous one wrote (a restart, or the periodic full sync) finds
// the jump rules and canaries in the iptables-save output it reads and
// runs no single iptables command; a missing jump rule is restored.
func TestFullSyncOverExistingRulesRunsNoSingleCommands(t *testing.T) {
	ctx := context.Background()
	k := &countingKernel{Fake: NewFake()}
	snap := flowtest.Scenarios()[0].Snapshot()
	p := newFakeProxier(t, k, nil)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	if k.single == 0 {
		t.Fatal("the first sync into an empty kernel ran no single commands: jump rules not ensured?")
	}
	want := dump(t, k)

	k.single = 0
	restarted := newFakeProxier(t, k, nil)
	if _, err := restarted.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	if k.single != 0 {
		t.Errorf("full sync over existing rules ran %d single iptables commands, want 0", k.single)
	}
	if got := dump(t, k); got != want {
		t.Errorf("full sync over existing rules changed them:\n%s", "want:\n"+want+"\ngot:\n"+got)
	}

	j := jumpRules[len(jumpRules)-1]
	if err := k.DeleteRule(ctx, j.table, j.from, j.args()...); err != nil {
		t.Fatal(err)
	}
	k.single = 0
	if _, err := restarted.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	if k.single != 1 {
		t.Errorf("restoring one deleted jump rule ran %d single commands, want 1", k.single)
	}
	if got := dump(t, k); got != want {
		t.Errorf("deleted jump rule not restored:\n%s", "want:\n"+want+"\ngot:\n"+got)
	}
}
