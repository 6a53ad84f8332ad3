package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// ensureStatic makes sure, on a full sync, that the jump rules from the
// built-in chains and the canary chains exist, and sets route_localnet
// when localhost NodePorts are on. What saved (the tables just read) shows
// in place is not asked again. The rest goes in one iptables-restore when
// saved shows why it is missing (its chain is not there, so no jump to it
// can be): the fresh node's case, one process instead of about forty.
// Otherwise (a jump missing from a chain that exists, perhaps saved in
// another form; or saved nil) single iptables commands check and add.
func (p *Proxier) ensureStatic(ctx context.Context, saved savedStatic) error {
	rules := p.jumps()
	var err error
	if b, ok := staticBatch(saved, rules); ok {
		if len(b) > 0 {
			if err = p.kernel.Restore(ctx, b, true); err != nil {
				err = fmt.Errorf("ensure chains and jump rules: %w", err)
			}
		}
	} else {
		err = p.ensureStaticOneByOne(ctx, saved, rules)
	}
	if err != nil {
		return err
	}
	if p.opts.LocalhostNodePorts && p.opts.Family == proxier.IPv4 {
		klog.InfoS("Setting route_localnet=1 for NodePorts on localhost")
		if err := p.kernel.SetSysctl(ctx, "net/ipv4/conf/all/route_localnet", "1"); err != nil {
			return fmt.Errorf("set route_localnet: %w", err)
		}
	}
	return nil
}

// jumps are the jump rules this Proxier keeps.
func (p *Proxier) jumps() []jumpRule {
	if p.opts.LocalhostNodePorts && p.opts.Family == proxier.IPv4 {
		// KUBE-FIREWALL only carries the anti-martian rule, needed only
		// with localhost NodePorts: otherwise kproxy does not create it
		// (and so leaves nothing of it behind).
		return append(append([]jumpRule{}, jumpRules...), kubeletJumpRules...)
	}
	return jumpRules
}

// staticBatch is the restore input (--noflush) that creates the missing
// chains and inserts the missing jumps, in the order single commands
// would (each at position 1); empty when nothing is missing. ok is false
// when saved cannot tell a jump is missing for sure.
func staticBatch(saved savedStatic, rules []jumpRule) (input []byte, ok bool) {
	if saved == nil {
		return nil, false
	}
	chains, lines := map[string][]string{}, map[string][]string{}
	declare := func(table, chain string) {
		if !saved.hasChain(table, chain) && !slices.Contains(chains[table], chain) {
			chains[table] = append(chains[table], chain)
		}
	}
	for _, j := range rules {
		switch {
		case !saved.hasChain(j.table, j.to):
			declare(j.table, j.to)
			lines[j.table] = append(lines[j.table], "-I "+j.from+" 1"+strings.TrimPrefix(j.saveLine(), "-A "+j.from))
		case !saved.hasJump(j):
			return nil, false
		}
	}
	for _, table := range canaryTables {
		declare(table, chainCanary)
	}
	var b bytes.Buffer
	for _, table := range append([]string{tableMangle}, tables...) {
		if len(chains[table]) == 0 && len(lines[table]) == 0 {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, c := range chains[table] {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, l := range lines[table] {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes(), true
}

// ensureStaticOneByOne ensures each chain and jump with its own iptables
// command (-N, -C then -I), as kube-proxy does.
func (p *Proxier) ensureStaticOneByOne(ctx context.Context, saved savedStatic, rules []jumpRule) error {
	for _, j := range rules {
		if !saved.hasChain(j.table, j.to) {
			if err := p.kernel.EnsureChain(ctx, j.table, j.to); err != nil {
				return fmt.Errorf("ensure chain %s/%s: %w", j.table, j.to, err)
			}
		}
		if saved.hasJump(j) {
			continue
		}
		if _, err := p.kernel.EnsureRule(ctx, xtables.Prepend, j.table, j.from, j.args()...); err != nil {
			return fmt.Errorf("ensure jump %s/%s -> %s: %w", j.table, j.from, j.to, err)
		}
	}
	for _, table := range canaryTables {
		if saved.hasChain(table, chainCanary) {
			continue
		}
		if err := p.kernel.EnsureChain(ctx, table, chainCanary); err != nil {
			return fmt.Errorf("ensure canary chain in %s: %w", table, err)
		}
	}
	return nil
}

// cleanup removes, table by table, the jump rules and then every chain of
// ours (the fixed ones and any per-Service chain), then the mangle
// canary. kubelet's KUBE-FIREWALL and its jumps are left alone, as
// kube-proxy does.
func cleanup(ctx context.Context, k Kernel) error {
	var errs []error
	for _, table := range []string{tableFilter, tableNAT} {
		errs = append(errs, cleanTable(ctx, k, table)...)
	}
	if err := k.DeleteChain(ctx, tableMangle, chainCanary); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("iptables cleanup: %w", err)
	}
	return nil
}

// cleanTable removes our jump rules and chains from table. One
// iptables-save tells which chains of ours are there, and a jump into a
// chain that does not exist cannot exist either: on a node without them
// (every start of another mode) that listing is all it costs. If the
// table cannot be listed, every jump rule is still deleted by a command
// that checks for it, so no stale chain stays reachable.
func cleanTable(ctx context.Context, k Kernel, table string) []error {
	var errs []error
	ours, err := ourChains(ctx, k, table)
	listed := err == nil
	if !listed {
		errs = append(errs, fmt.Errorf("list %s: %w", table, err))
	}
	for _, j := range jumpRules {
		if j.table != table || (listed && !slices.Contains(ours, j.to)) {
			continue
		}
		if err := k.DeleteRule(ctx, j.table, j.from, j.args()...); err != nil {
			errs = append(errs, fmt.Errorf("delete jump %s/%s -> %s: %w", j.table, j.from, j.to, err))
		}
	}
	if err := deleteChains(ctx, k, table, ours); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// cleanedFixedChains are the chains with fixed names cleanup deletes, by
// table: fixedChains without kubelet's KUBE-FIREWALL, plus the canaries
// (the mangle one is deleted on its own).
var cleanedFixedChains = map[string][]string{
	tableNAT:    {chainServices, chainNodePorts, chainPostrouting, chainMarkMasq, chainCanary},
	tableFilter: {chainServices, chainExternalServices, chainForward, chainNodePorts, chainProxyFirewall, chainCanary},
}

// deleteChains flushes and deletes ours, chains of ours that table holds.
//
// Two restores: flushing every chain and deleting the per-Service ones
// cannot fail, but deleting a fixed chain still referenced from elsewhere
// (the ipvs mode's jump rules into the shared KUBE-SERVICES, say) can, and
// must not keep the rest in place.
func deleteChains(ctx context.Context, k Kernel, table string, ours []string) error {
	if len(ours) == 0 {
		return nil
	}
	var flush, rest bytes.Buffer
	flush.WriteString("*" + table + "\n")
	for _, chain := range ours {
		flush.WriteString(":" + chain + " - [0:0]\n")
	}
	for _, chain := range ours {
		if deletableChain(chain) {
			flush.WriteString("-X " + chain + "\n")
		} else {
			rest.WriteString("-X " + chain + "\n")
		}
	}
	flush.WriteString("COMMIT\n")
	if err := k.Restore(ctx, flush.Bytes(), false); err != nil {
		return fmt.Errorf("delete chains in %s: %w", table, err)
	}
	if rest.Len() == 0 {
		return nil
	}
	if err := k.Restore(ctx, []byte("*"+table+"\n"+rest.String()+"COMMIT\n"), false); err != nil {
		return fmt.Errorf("delete chains in %s: %w", table, err)
	}
	return nil
}

// ourChains lists the chains of ours in table, as iptables-save shows them.
func ourChains(ctx context.Context, k Kernel, table string) ([]string, error) {
	chains, err := xtables.SavedChains(ctx, k, table)
	return slices.DeleteFunc(chains, func(chain string) bool {
		return !deletableChain(chain) && !slices.Contains(cleanedFixedChains[table], chain)
	}), err
}
