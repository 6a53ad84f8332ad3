package nftables

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// staleChainDelay is how long a flushed service chain waits before it is
// deleted: before Linux 6.2 the kernel notices only a moment later that a
// map element no longer points to it, and deleting it at once fails.
const staleChainDelay = time.Second

// Proxier is the nftables mode for one IP family.
type Proxier struct {
	opts Options
	nft  knftables.Interface
	now  func() time.Time

	mu sync.Mutex
	// baseRecreated is set once the base chains have been deleted and
	// added again, which the first sync does.
	baseRecreated bool
	// known holds the service chains and affinity sets in the kernel as of
	// the last successful sync; nil until then and after a failure, when
	// the next sync lists them.
	known *kernelObjects
	// stale are flushed service chains waiting for deletion, by the time
	// they were flushed.
	stale map[string]time.Time
}

// kernelObjects are kproxy's per-service objects in the table.
type kernelObjects struct {
	chains, affinitySets map[string]bool
}

var _ proxier.Proxier = (*Proxier)(nil)

// New validates opts and returns a Proxier. It writes nothing to the
// kernel; the first Sync does.
func New(opts Options) (*Proxier, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	nft, err := opts.nft()
	if err != nil {
		return nil, err
	}
	return &Proxier{opts: opts, nft: nft, now: time.Now, stale: map[string]time.Time{}}, nil
}

// Sync implements proxier.Proxier. Every sync is full for now: one
// transaction rewrites the shared chains, sets and maps and the chains of
// every Service, flushes the service chains no longer wanted (deleted a
// sync later) and deletes stale affinity sets.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.now()
	snap := req.Snapshot
	if snap == nil || snap.Family != p.opts.Family {
		return proxier.SyncResult{Full: true}, fmt.Errorf("nftables %s: sync: snapshot of the wrong family", p.opts.Family)
	}
	p.deleteStaleChains(ctx, start)
	if p.known == nil {
		known, err := p.listKernel(ctx)
		if err != nil {
			return proxier.SyncResult{Full: true}, fmt.Errorf("nftables %s: %w", p.opts.Family, err)
		}
		p.known = known
	}
	tx := p.nft.NewTransaction()
	r := newRenderer(p.opts, tx, snap)
	r.render(snap, !p.baseRecreated)
	p.dropStale(tx, r, start)
	logConflicts(r.conflicts, p.opts.Family)
	if klog.V(9).Enabled() {
		klog.V(9).InfoS("Running nftables transaction", "family", p.opts.Family, "transaction", tx.String())
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		p.known = nil
		clear(p.stale)
		p.opts.Metrics.syncFailed(p.opts.Family)
		logRunFailure(err, tx, p.opts.Family)
		return proxier.SyncResult{Full: true}, fmt.Errorf("nftables %s: run transaction: %w", p.opts.Family, err)
	}
	p.baseRecreated = true
	p.known = &kernelObjects{chains: r.chains, affinitySets: r.affinitySets}
	for c := range p.stale {
		p.known.chains[c] = true
	}
	klog.V(2).InfoS("Synced nftables rules", "family", p.opts.Family, "services", len(snap.Services),
		"chains", len(r.chains), "operations", tx.NumOperations(), "elapsed", time.Since(start))
	return proxier.SyncResult{Full: true, Written: map[string]int{tableName: tx.NumOperations()}, NoLocalEndpoints: r.noLocal}, nil
}

// listKernel reads the service chains and affinity sets in the table (none
// if there is no table yet).
func (p *Proxier) listKernel(ctx context.Context) (*kernelObjects, error) {
	k := &kernelObjects{chains: map[string]bool{}, affinitySets: map[string]bool{}}
	chains, err := p.nft.List(ctx, "chains")
	if knftables.IsNotFound(err) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, c := range chains {
		if isServiceChain(c) {
			k.chains[c] = true
		}
	}
	sets, err := p.nft.List(ctx, "sets")
	if err != nil && !knftables.IsNotFound(err) {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		if isAffinitySet(s) {
			k.affinitySets[s] = true
		}
	}
	return k, nil
}

// dropStale flushes the known service chains this sync does not want
// (recording them for deletion) and deletes the unwanted affinity sets,
// whose rules the flush removes in the same transaction.
func (p *Proxier) dropStale(tx *knftables.Transaction, r *renderer, now time.Time) {
	for c := range p.known.chains {
		if r.chains[c] {
			delete(p.stale, c)
			continue
		}
		tx.Flush(&knftables.Chain{Name: c})
		if _, ok := p.stale[c]; !ok {
			p.stale[c] = now
		}
	}
	for s := range p.known.affinitySets {
		if !r.affinitySets[s] {
			tx.Delete(&knftables.Set{Name: s})
		}
	}
}

// deleteStaleChains deletes, in a transaction of its own, the chains
// flushed at least staleChainDelay ago. On failure the next sync lists
// the kernel again and retries.
func (p *Proxier) deleteStaleChains(ctx context.Context, now time.Time) {
	tx := p.nft.NewTransaction()
	for c, since := range p.stale {
		if now.Sub(since) >= staleChainDelay {
			tx.Delete(&knftables.Chain{Name: c})
			delete(p.stale, c)
			if p.known != nil {
				delete(p.known.chains, c)
			}
		}
	}
	if tx.NumOperations() == 0 {
		return
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		klog.ErrorS(err, "Cannot delete stale nftables chains; retrying at the next sync", "family", p.opts.Family)
		p.opts.Metrics.cleanupFailed(p.opts.Family)
		p.known = nil
	}
}

// stdinLine finds the line numbers in nft's errors ("/dev/stdin:106:41-63:").
var stdinLine = regexp.MustCompile(`/dev/stdin:(\d+):`)

// logConflicts logs the destinations two Services claim: one line, and
// all of them at verbosity 4.
func logConflicts(conflicts []string, family proxier.Family) {
	if len(conflicts) == 0 {
		return
	}
	klog.InfoS("Services claim the same destinations; the first in name order keeps each", "family", family,
		"conflicts", len(conflicts), "first", conflicts[0])
	klog.V(4).InfoS("Conflicting destinations", "family", family, "conflicts", conflicts)
}

// logRunFailure logs a rejected transaction with the lines nft names in
// its error (the whole transaction only at verbosity 4).
func logRunFailure(err error, tx *knftables.Transaction, family proxier.Family) {
	text := tx.String()
	klog.ErrorS(err, "nftables transaction failed", "family", family, "operations", tx.NumOperations(),
		"offendingLines", offendingLines(err, text))
	klog.V(4).InfoS("Failed nftables transaction", "family", family, "transaction", text)
}

// offendingLines returns the transaction's lines nft's error names, each
// prefixed with its number.
func offendingLines(err error, text string) []string {
	lines := strings.Split(text, "\n")
	var bad []string
	for _, m := range stdinLine.FindAllStringSubmatch(err.Error(), 10) {
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) {
			bad = append(bad, m[1]+": "+lines[n-1])
		}
	}
	return bad
}

// Cleanup implements proxier.Proxier.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known, p.baseRecreated = nil, false
	clear(p.stale)
	return cleanup(ctx, p.nft)
}
