package nftables

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"
)

// chainCanary is the chain whose rules tell whether someone flushed or
// deleted the table: nat-postrouting always holds exactly the jump to
// masquerading. kube-proxy's layout has no canary object of its own, and
// a table equal to kube-proxy's is worth keeping.
const chainCanary = chainNATPostrouting

// Flushed implements proxier.Canary: true when the canary chain has no
// rule (`nft flush table …`) or is gone with the table (`nft delete
// table …`, `nft flush ruleset`) since the last successful sync. It
// counts the rules with one netlink dump of that chain (ruleCounter). The
// state is then dropped, so that the next sync (the loop makes it full)
// lists the kernel. Before the first sync, and while a full sync is due
// anyway, it reports false without asking the kernel.
func (p *Proxier) Flushed(ctx context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return false, nil
	}
	n, err := p.rules.CountRules(ctx, chainCanary)
	if err != nil {
		return false, fmt.Errorf("nftables %s: check canary chain %s: %w", p.opts.Family, chainCanary, err)
	}
	if n > 0 {
		return false, nil
	}
	klog.InfoS("nftables canary chain empty or gone: the table was flushed or deleted", "family", p.opts.Family, "chain", chainCanary)
	p.state = nil
	clear(p.stale)
	return true, nil
}
