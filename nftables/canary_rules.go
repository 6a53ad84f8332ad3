package nftables

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// ruleCounter counts the rules of one chain of the table. The canary asks
// it every few seconds, so it must be cheap whatever the table's size:
// nft (1.0.6) loads the whole table before listing a single chain, which
// takes seconds at 5,000 Services.
type ruleCounter interface {
	CountRules(ctx context.Context, chain string) (int, error)
}

// ruleCounterFor is opts.NFT's own counter if it has one (a test's
// namespace wrapper), a netlink dump for the real nft, or else a listing
// through knftables (the Fake).
func ruleCounterFor(opts Options, nft knftables.Interface) ruleCounter {
	if rc, ok := opts.NFT.(ruleCounter); ok {
		return rc
	}
	if opts.NFT == nil {
		return netlinkRuleCounter(opts.Family)
	}
	return listedRules{nft}
}

// listedRules counts with knftables' ListRules; no table or chain is no
// rule.
type listedRules struct{ nft knftables.Interface }

func (l listedRules) CountRules(ctx context.Context, chain string) (int, error) {
	rules, err := l.nft.ListRules(ctx, chain)
	if knftables.IsNotFound(err) {
		return 0, nil
	}
	return len(rules), err
}

// Constants of linux/netfilter/nfnetlink.h and nf_tables.h.
const (
	nfnlSubsysNFTables = 10
	nftMsgGetRule      = 7
	nftaRuleTable      = 1
	nftaRuleChain      = 2
)

// netlinkRules counts a chain's rules with one NFT_MSG_GETRULE dump that
// the kernel filters by table and chain, in the calling thread's network
// namespace.
type netlinkRules struct{ family uint8 }

// netlinkRuleCounter counts the rules of the table of family.
func netlinkRuleCounter(family proxier.Family) netlinkRules {
	if family == proxier.IPv6 {
		return netlinkRules{unix.NFPROTO_IPV6}
	}
	return netlinkRules{unix.NFPROTO_IPV4}
}

func (n netlinkRules) CountRules(_ context.Context, chain string) (int, error) {
	req := nl.NewNetlinkRequest(nfnlSubsysNFTables<<8|nftMsgGetRule, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: n.family, Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nftaRuleTable, nl.ZeroTerminated(tableName)))
	req.AddData(nl.NewRtAttr(nftaRuleChain, nl.ZeroTerminated(chain)))
	msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("netlink dump of chain %s: %w", chain, err)
	}
	return len(msgs), nil
}
