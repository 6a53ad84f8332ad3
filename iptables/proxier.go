package iptables

import (
	"bytes"
	"context"
	"fmt"
	"github.com/kproxy/kproxy/internal/xtables"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// keepBufferMax is the largest restore buffer kept for the next sync
// (partial syncs write a few chains; a full sync at 10,000 Services ~10 MB).
const keepBufferMax = 1 << 20

// Proxier is the iptables mode for one IP family.
type Proxier struct {
	opts   Options
	kernel Kernel

	mu       sync.Mutex
	renderer *renderer
	seed     maphash.Seed
	// written holds the content of every chain kproxy owns as of the last
	// successful sync; nil until the first one and after a failure, which
	// makes the next Sync full.
	written chainSums
	buf     bytes.Buffer
}

var (
	_ proxier.Proxier          = (*Proxier)(nil)
	_ proxier.Canary           = (*Proxier)(nil)
	_ proxier.ModeMetricsOwner = (*Proxier)(nil)
)

// ModeMetrics returns the iptables-named metrics the loop records this
// mode's syncs in.
func (p *Proxier) ModeMetrics() proxier.ModeMetrics { return p.opts.Metrics }

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
	return &Proxier{opts: opts, kernel: k, seed: maphash.MakeSeed()}, nil
}

// Sync implements proxier.Proxier. Both kinds of sync render the snapshot
// (only the Services that changed are rendered again) and write, in one
// iptables-restore --noflush, only the chains whose content differs from
// the kernel's: a full sync reads the kernel's chains back (iptables-save)
// and also ensures the jump rules and deletes stale chains; a partial sync
// trusts what it wrote last and compares only the shared chains and the
// chains of the Services that changed.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	snap := req.Snapshot
	if snap == nil || snap.Family != p.opts.Family {
		return proxier.SyncResult{}, fmt.Errorf("iptables %s: sync: snapshot of the wrong family", p.opts.Family)
	}
	full := req.Full || p.written == nil
	if p.renderer == nil {
		p.renderer = newRenderer(p.opts, p.kernel.HasRandomFully(), p.seed)
	}
	if full {
		cur, saved, err := p.readKernel(ctx)
		if err != nil {
			// Without the kernel's state, write everything; stale chains
			// are harmless (nothing jumps to them) and go next time.
			klog.ErrorS(err, "Cannot read the existing chains; rewriting all of them", "family", p.opts.Family)
			cur, saved = chainSums{}, nil
		}
		if err := p.ensureStatic(ctx, saved); err != nil {
			p.written = nil
			return proxier.SyncResult{Full: full}, fmt.Errorf("iptables %s: %w", p.opts.Family, err)
		}
		return p.syncRules(ctx, snap, full, cur, start)
	}
	return p.syncRules(ctx, snap, full, p.written, start)
}

// syncRules renders snap and writes what differs from cur (the kernel's
// chains on a full sync, what was last written on a partial one).
func (p *Proxier) syncRules(ctx context.Context, snap *proxier.Snapshot, full bool, cur chainSums, start time.Time) (proxier.SyncResult, error) {
	res := p.renderer.render(snap)
	var stale map[string][]string
	if full {
		p.renderer.withTextFor(snap, res, cur)
		stale = fullStale(res, cur)
	} else {
		stale = partialStale(res, cur)
	}
	tx := newTxn(res, full, cur, p.seed, stale)
	if err := tx.Err(); err != nil {
		p.written = nil // nothing was sent, but the next sync must be full
		return proxier.SyncResult{Full: full}, fmt.Errorf("iptables %s: %w", p.opts.Family, err)
	}
	var kernelWrite time.Duration
	if !tx.empty() {
		data := tx.restoreInput(&p.buf)
		if klog.V(9).Enabled() {
			klog.V(9).InfoS("Restoring iptables rules", "family", p.opts.Family, "rules", string(data))
		}
		restoreStart := time.Now()
		err := p.kernel.Restore(ctx, data, true)
		kernelWrite = time.Since(restoreStart)
		if err != nil {
			p.written = nil // the next sync is full
			xtables.LogRestoreFailure(err, p.opts.Family)
			return proxier.SyncResult{Full: full, RestoreFailed: true, KernelWrite: kernelWrite}, fmt.Errorf("iptables %s: restore: %w", p.opts.Family, err)
		}
		if p.buf.Cap() > keepBufferMax {
			p.buf = bytes.Buffer{} // a full sync's input: not worth keeping until the next one
		}
	}
	tx.apply(cur, p.seed)
	p.written = cur
	for _, s := range res.services {
		s.dropText()
	}
	klog.V(2).InfoS("Synced iptables rules", "family", p.opts.Family, "full", full, "services", len(snap.Services),
		"rendered", len(res.changed), "natRules", res.rules[tableNAT], "filterRules", res.rules[tableFilter],
		"chainsWritten", len(tx.write[tableNAT])+len(tx.write[tableFilter]), "chainsDeleted", len(tx.del[tableNAT])+len(tx.del[tableFilter]),
		"written", tx.written, "elapsed", time.Since(start))
	return proxier.SyncResult{Full: full, Rules: res.rules, Written: tx.written, NoLocalEndpoints: res.noLocal,
		KernelWrite: kernelWrite}, nil
}

// readKernel reads back the content of kproxy's chains (iptables-save of
// nat and filter) and, from the same output and mangle's, the chains and
// jump rules ensureStatic needs. Each table's output is dropped once parsed.
func (p *Proxier) readKernel(ctx context.Context) (chainSums, savedStatic, error) {
	cur, saved := chainSums{}, savedStatic{}
	for _, table := range append([]string{tableMangle}, tables...) {
		out, err := p.kernel.Save(ctx, table)
		if err != nil {
			return nil, nil, err
		}
		saved[table] = readStatic(out)
		if table == tableMangle {
			continue
		}
		if cur[table], err = readSums(out, p.seed); err != nil {
			return nil, nil, fmt.Errorf("parse iptables-save -t %s: %w", table, err)
		}
	}
	return cur, saved, nil
}

// fullStale lists the chains of kproxy's per-Service, per-endpoint and
// bucket kinds that exist in the kernel (left by a previous run, by
// kube-proxy, or no longer wanted) and that res does not want.
func fullStale(res *rendered, cur chainSums) map[string][]string {
	want := map[string]bool{}
	for _, s := range res.services {
		for _, c := range s.own {
			want[c.name] = true
		}
	}
	stale := map[string][]string{}
	for _, table := range tables {
		for c := range cur[table] {
			if deletableChain(c) && res.shared[table][c] == nil && !(table == tableNAT && want[c]) {
				stale[table] = append(stale[table], c)
			}
		}
	}
	return stale
}

// partialStale lists the chains of the replaced or removed renderings that
// the new ones do not have, and the bucket chains when bucketing stopped.
func partialStale(res *rendered, cur chainSums) map[string][]string {
	now := map[string]bool{}
	for _, s := range res.changed {
		for _, c := range s.own {
			now[c.name] = true
		}
	}
	var stale []string
	for _, s := range res.gone {
		for _, c := range s.own {
			if !now[c.name] {
				stale = append(stale, c.name)
			}
		}
	}
	first := level1Chain(0)
	if _, had := cur[tableNAT][first]; had && res.shared[tableNAT][first] == nil {
		for c := range cur[tableNAT] {
			if strings.HasPrefix(c, prefixBucket) {
				stale = append(stale, c)
			}
		}
	}
	return map[string][]string{tableNAT: stale}
}

// Cleanup implements proxier.Proxier.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.written = nil
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
