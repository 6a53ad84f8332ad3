package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/internal/xtables"
	"github.com/kproxy/kproxy/proxier"
)

// ensureStatic makes sure, on a full sync, that the jump rules from the
// built-in chains and the canary chains exist, and sets route_localnet
// when localhost NodePorts are on. What saved (the tables just read) shows
// in place is not asked again; the rest goes through single iptables
// commands (with a nil saved, all of it).
func (p *Proxier) ensureStatic(ctx context.Context, saved savedStatic) error {
	rules := jumpRules
	if p.opts.LocalhostNodePorts && p.opts.Family == proxier.IPv4 {
		// KUBE-FIREWALL only carries the anti-martian rule, needed only
		// with localhost NodePorts: otherwise kproxy does not create it
		// (and so leaves nothing of it behind).
		rules = append(append([]jumpRule{}, jumpRules...), kubeletJumpRules...)
	}
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
	if p.opts.LocalhostNodePorts && p.opts.Family == proxier.IPv4 {
		klog.InfoS("Setting route_localnet=1 for NodePorts on localhost")
		if err := p.kernel.SetSysctl(ctx, "net/ipv4/conf/all/route_localnet", "1"); err != nil {
			return fmt.Errorf("set route_localnet: %w", err)
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
