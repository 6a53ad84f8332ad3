package iptables

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// Proxier is the iptables mode for one IP family.
type Proxier struct {
	opts   Options
	kernel Kernel

	mu       sync.Mutex
	renderer *renderer
	// owned are the chains (by table) of the last successful write; nil
	// until the first one, which makes the first Sync full.
	owned map[string]map[string]bool
}

var (
	_ proxier.Proxier = (*Proxier)(nil)
	_ proxier.Canary  = (*Proxier)(nil)
)

// New validates opts and returns a Proxier. It writes nothing to the
// kernel; the first Sync (always full) does.
func New(opts Options) (*Proxier, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	k, err := opts.kernel()
	if err != nil {
		return nil, err
	}
	return &Proxier{opts: opts, kernel: k}, nil
}

// Sync implements proxier.Proxier: a full sync rewrites every chain and
// ensures the jump rules; a partial one rewrites the dispatch chains and
// the chains of req.Changed only. Either is one iptables-restore.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	snap := req.Snapshot
	if snap == nil || snap.Family != p.opts.Family {
		return proxier.SyncResult{}, fmt.Errorf("iptables %s: sync: snapshot of the wrong family", p.opts.Family)
	}
	full := req.Full || p.owned == nil
	if p.renderer == nil {
		p.renderer = newRenderer(p.opts, p.kernel.HasRandomFully())
	}
	if full {
		if err := p.ensureStatic(ctx); err != nil {
			p.countFailure(full)
			return proxier.SyncResult{Full: full}, fmt.Errorf("iptables %s: %w", p.opts.Family, err)
		}
	}
	var write proxier.NameSet
	if !full {
		write = req.Changed
	}
	p.renderer.build(snap, write)
	stale, err := p.staleChains(ctx, full, p.renderer.owned)
	if err != nil {
		// Stale chains are harmless (nothing jumps to them): go on.
		klog.ErrorS(err, "Cannot list existing chains; stale chains are kept until the next full sync", "family", p.opts.Family)
	}
	res := p.renderer.finish(stale)
	klog.V(9).InfoS("Restoring iptables rules", "family", p.opts.Family, "rules", string(res.data))
	if err := p.kernel.Restore(ctx, res.data, true); err != nil {
		p.countFailure(full)
		logRestoreFailure(err, res.data, p.opts.Family)
		return proxier.SyncResult{Full: full}, fmt.Errorf("iptables %s: restore: %w", p.opts.Family, err)
	}
	p.owned = res.owned
	klog.V(2).InfoS("Synced iptables rules", "family", p.opts.Family, "full", full, "services", len(snap.Services),
		"natRules", res.rules[tableNAT], "filterRules", res.rules[tableFilter], "written", res.written, "elapsed", time.Since(start))
	return proxier.SyncResult{Full: full, Rules: res.rules, Written: res.written, NoLocalEndpoints: res.noLocal}, nil
}

func (p *Proxier) countFailure(full bool) {
	if p.opts.Metrics == nil {
		return
	}
	fam := string(p.opts.Family)
	p.opts.Metrics.RestoreFailures.WithLabelValues(fam).Inc()
	if !full {
		p.opts.Metrics.PartialRestoreFailures.WithLabelValues(fam).Inc()
	}
}

// staleChains lists, by table, our per-Service chains that exist (full
// sync: as listed by iptables-save, which finds leftovers of a previous
// run or of kube-proxy) or that we wrote last time (partial sync) but are
// no longer wanted.
func (p *Proxier) staleChains(ctx context.Context, full bool, want map[string]map[string]bool) (map[string][]string, error) {
	stale := map[string][]string{}
	if !full {
		for _, table := range []string{tableFilter, tableNAT} {
			for c := range p.owned[table] {
				if !want[table][c] && isServiceChain(c) {
					stale[table] = append(stale[table], c)
				}
			}
		}
		return stale, nil
	}
	out, err := p.kernel.Save(ctx, tableNAT)
	if err != nil {
		return stale, err
	}
	tables, err := parseRestore(string(out))
	if err != nil {
		return stale, fmt.Errorf("parse iptables-save output: %w", err)
	}
	for _, t := range tables {
		for _, c := range t.chains {
			if isServiceChain(c) && !want[t.name][c] {
				stale[t.name] = append(stale[t.name], c)
			}
		}
	}
	return stale, nil
}

// Cleanup implements proxier.Proxier.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.owned = nil
	return cleanup(ctx, p.kernel)
}

// Flushed implements proxier.Canary: true when a canary chain is gone,
// i.e. someone flushed the tables since our last full sync.
func (p *Proxier) Flushed(ctx context.Context) (bool, error) {
	for _, table := range canaryTables {
		ok, err := p.kernel.ChainExists(ctx, table, chainCanary)
		if err != nil {
			return false, fmt.Errorf("iptables %s: check canary in %s: %w", p.opts.Family, table, err)
		}
		if !ok {
			klog.InfoS("Canary chain missing: iptables rules were flushed", "family", p.opts.Family, "table", table)
			return true, nil
		}
	}
	return false, nil
}

// Owned returns a copy of the chains kproxy wrote in its last successful
// sync, by table (for tests and debugging).
func (p *Proxier) Owned() map[string]map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[string]bool{}
	for t, cs := range p.owned {
		out[t] = maps.Clone(cs)
	}
	return out
}
