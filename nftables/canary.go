package nftables

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"
)

// chainCanary is the chain whose rules tell whether someone flushed or
// deleted the table: nat-postrouting always holds exactly the jump to
// masquerading, and it references no set, so listing it costs nft
// little. kube-proxy's layout has no canary object of its own, and a
// table equal to kube-proxy's is worth keeping.
const chainCanary = chainNATPostrouting

// Flushed implements proxier.Canary: true when the table, or the canary
// chain's rule, is gone since the last successful sync (e.g. `nft delete
// table ip kube-proxy`, `nft flush table …`, `nft flush ruleset`). The
// state is then dropped, so that the next sync (the loop makes it full)
// lists the kernel. Before the first sync, and while a full sync is due
// anyway, it reports false without asking the kernel.
func (p *Proxier) Flushed(ctx context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return false, nil
	}
	rules, err := p.nft.ListRules(ctx, chainCanary)
	switch {
	case knftables.IsNotFound(err):
		klog.InfoS("nftables table or canary chain missing: the table was deleted", "family", p.opts.Family, "chain", chainCanary)
	case err != nil:
		return false, fmt.Errorf("nftables %s: check canary chain %s: %w", p.opts.Family, chainCanary, err)
	case len(rules) == 0:
		klog.InfoS("nftables canary chain is empty: the table was flushed", "family", p.opts.Family, "chain", chainCanary)
	default:
		return false, nil
	}
	p.state = nil
	clear(p.stale)
	return true, nil
}
