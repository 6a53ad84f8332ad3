package iptables

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/xtables"

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

// TestFullSyncOverExistingRulesRunsNoSingleCommands: the first sync into
// an empty kernel creates the jump rules and canaries in one restore, as
// single commands would; a full sync over the rules a previous one wrote
// (a restart, or the periodic full sync) finds them in the iptables-save
// output it reads and runs no command for them; a jump rule missing from
// a chain that exists is checked and restored by single commands.
func TestFullSyncOverExistingRulesRunsNoSingleCommands(t *testing.T) {
	ctx := context.Background()
	k := &countingKernel{Fake: NewFake()}
	snap := flowtest.Scenarios()[0].Snapshot()
	p := newFakeProxier(t, k, nil)
	if _, err := p.Sync(ctx, proxier.SyncRequest{Snapshot: snap, Full: true}); err != nil {
		t.Fatal(err)
	}
	if k.single != 0 {
		t.Errorf("the first sync into an empty kernel ran %d single commands, want 0 (one restore)", k.single)
	}
	batches := 0
	for _, in := range k.Restores {
		if strings.HasPrefix(in, "*mangle\n:"+chainCanary+" - [0:0]\n") && strings.Contains(in, "\n-I PREROUTING 1 ") {
			batches++
		}
	}
	if batches != 1 {
		t.Errorf("%d restores created the canaries and jump rules, want 1:\n%s", batches, strings.Join(k.Restores, "\n---\n"))
	}
	want := dump(t, k)
	oneByOne := &countingKernel{Fake: NewFake()}
	if err := newFakeProxier(t, oneByOne, nil).ensureStaticOneByOne(ctx, nil, p.jumps()); err != nil {
		t.Fatal(err)
	}
	for _, table := range append([]string{tableMangle}, tables...) {
		if got, want := staticOnly(t, k, table), staticOnly(t, oneByOne, table); got != want {
			t.Errorf("%s: the batch made\n%s\nsingle commands make\n%s", table, got, want)
		}
	}

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

// staticOnly is table's save output without per-Service chains and
// rules: the built-in chains, their jumps and the canary.
func staticOnly(t *testing.T, k *countingKernel, table string) string {
	t.Helper()
	out, err := k.Save(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") && !isBuiltin(strings.Fields(l)[1]) {
			continue
		}
		if strings.HasPrefix(l, ":") && !isBuiltin(strings.Fields(l[1:])[0]) && !strings.HasPrefix(l, ":"+chainCanary) && !isJumpTarget(table, strings.Fields(l[1:])[0]) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

func isBuiltin(chain string) bool {
	return slices.Contains([]string{"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}, chain)
}

func isJumpTarget(table, chain string) bool {
	return slices.ContainsFunc(append(jumpRules, kubeletJumpRules...), func(j jumpRule) bool { return j.table == table && j.to == chain })
}
