package nftables

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
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
	// rules counts the canary chain's rules.
	rules ruleCounter
	now   func() time.Time

	mu sync.Mutex
	// baseRecreated is set once the base chains have been deleted and
	// added again, which the first sync does.
	baseRecreated bool
	// state is what the table holds as of the last successful sync; nil
	// until then and after a failure (or a canary alarm), when the next
	// sync is full and lists the kernel's per-service objects first.
	state *syncState
	// stale are flushed service chains waiting for deletion, by the time
	// they were flushed.
	stale map[string]time.Time
}

var (
	_ proxier.Proxier = (*Proxier)(nil)
	_ proxier.Canary  = (*Proxier)(nil)
)

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
	return &Proxier{opts: opts, nft: nft, rules: ruleCounterFor(opts, nft), now: time.Now, stale: map[string]time.Time{}}, nil
}

// Sync implements proxier.Proxier. It first deletes the chains flushed
// at least staleChainDelay ago. A full sync (asked for, the first one,
// after a failure, or when the Node changed) rewrites the whole table in
// one transaction; a partial one sends only the changed Services' chains
// and the elements that differ from what was last written, and reads
// nothing from the kernel.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.now()
	snap := req.Snapshot
	if snap == nil || snap.Family != p.opts.Family {
		return proxier.SyncResult{Full: true}, fmt.Errorf("nftables %s: sync: snapshot of the wrong family", p.opts.Family)
	}
	p.deleteStaleChains(ctx, start)
	if req.Full || p.state == nil || p.state.global != globalKey(snap) {
		return p.syncFull(ctx, snap, start)
	}
	return p.syncPartial(ctx, snap, req.Changed, start)
}

// run sends tx (nothing when it is empty) and returns how long the
// write took (send). On failure the state is dropped, so that the next
// sync is full and lists the kernel again.
func (p *Proxier) run(ctx context.Context, tx ops) (time.Duration, error) {
	if tx.NumOperations() == 0 {
		return 0, nil
	}
	if klog.V(9).Enabled() {
		klog.V(9).InfoS("Running nftables transaction", "family", p.opts.Family, "transaction", tx.String())
	}
	took, err := p.send(ctx, tx)
	if err != nil {
		p.state = nil
		clear(p.stale)
		p.opts.Metrics.syncFailed(p.opts.Family)
		logRunFailure(err, tx, p.opts.Family)
		return took, fmt.Errorf("nftables %s: run transaction: %w", p.opts.Family, err)
	}
	return took, nil
}

// textSender is an Interface that takes a sync's operations as text (the
// real nft): it supplies the textWriter and sends what was written.
type textSender interface {
	newTextWriter() *textWriter
	// sendText returns how long nft itself ran.
	sendText(ctx context.Context, w *textWriter) (time.Duration, error)
}

// netlinkSender is a textSender that may send a partial sync's
// operations by netlink instead (mergingNFT).
type netlinkSender interface {
	// netlinkEnabled tells whether a batch would be sent (after repeated
	// failures netlink is off, and compiling one would be wasted).
	netlinkEnabled() bool
}

// newOps is a sync's operations: written straight as text when the
// Interface takes text (and, for a partial sync, compiled for netlink
// too when it would be sent so), else a knftables transaction.
func (p *Proxier) newOps(partial bool) ops {
	if s, ok := p.nft.(textSender); ok {
		w := s.newTextWriter()
		if n, ok := s.(netlinkSender); ok && partial && n.netlinkEnabled() {
			w.nl = newNetlinkBatch(w.family)
		}
		return w
	}
	return p.nft.NewTransaction()
}

// send sends ops made by newOps and returns how long it took: the nft
// process's run for text, the whole Run for a transaction.
func (p *Proxier) send(ctx context.Context, tx ops) (time.Duration, error) {
	if w, ok := tx.(*textWriter); ok {
		return p.nft.(textSender).sendText(ctx, w)
	}
	start := time.Now()
	err := p.nft.Run(ctx, tx.(*knftables.Transaction))
	return time.Since(start), err
}

// dropStale flushes the known service chains the Services do not want
// (recording them for deletion) and deletes the unwanted affinity sets,
// whose rules the flushes remove in the same transaction. A wanted chain
// waiting for deletion is kept.
func (p *Proxier) dropStale(tx ops, known, wanted kernelObjects, now time.Time) {
	for _, c := range p.markStale(known, wanted, now) {
		tx.Flush(&knftables.Chain{Name: c})
	}
	deleteStaleSets(tx, known, wanted)
}

// markStale records the known service chains the Services do not want for
// deletion (the caller flushes them) and returns them; a wanted chain
// waiting for deletion is kept.
func (p *Proxier) markStale(known, wanted kernelObjects, now time.Time) []string {
	for c := range wanted.chains {
		delete(p.stale, c)
	}
	var unwanted []string
	for _, c := range slices.Sorted(maps.Keys(known.chains)) {
		if wanted.chains[c] {
			continue
		}
		unwanted = append(unwanted, c)
		if _, ok := p.stale[c]; !ok {
			p.stale[c] = now
		}
	}
	return unwanted
}

// deleteStaleSets deletes the known affinity sets not wanted.
func deleteStaleSets(tx ops, known, wanted kernelObjects) {
	for _, s := range slices.Sorted(maps.Keys(known.affinitySets)) {
		if _, ok := wanted.affinitySets[s]; !ok {
			tx.Delete(&knftables.Set{Name: s})
		}
	}
}

// deleteStaleChains deletes, in a transaction of its own, the chains
// flushed at least staleChainDelay ago. On failure the sync becomes a
// full one, which lists the kernel again and retries.
func (p *Proxier) deleteStaleChains(ctx context.Context, now time.Time) {
	tx := p.nft.NewTransaction()
	for _, c := range slices.Sorted(maps.Keys(p.stale)) {
		if now.Sub(p.stale[c]) >= staleChainDelay {
			tx.Delete(&knftables.Chain{Name: c})
			delete(p.stale, c)
		}
	}
	if tx.NumOperations() == 0 {
		return
	}
	if err := p.nft.Run(ctx, tx); err != nil {
		klog.ErrorS(err, "Cannot delete stale nftables chains; retrying at the next sync", "family", p.opts.Family)
		p.opts.Metrics.cleanupFailed(p.opts.Family)
		p.state = nil
	}
}

// stdinLine finds the line numbers and columns in nft's errors
// ("/dev/stdin:106:41-63:").
var stdinLine = regexp.MustCompile(`/dev/stdin:(\d+):(?:(\d+)-(\d+):)?`)

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
func logRunFailure(err error, tx ops, family proxier.Family) {
	text := sentText(err, tx)
	klog.ErrorS(err, "nftables transaction failed", "family", family, "operations", tx.NumOperations(),
		"offendingLines", offendingLines(err, text))
	klog.V(4).InfoS("Failed nftables transaction", "family", family, "transaction", text)
}

// offendingLines returns the transaction's lines nft's error names, each
// prefixed with its number (and, for a rule in a chain block, the chain);
// of a long line (merged elements) only the part around the columns nft
// names.
func offendingLines(err error, text string) []string {
	lines := strings.Split(text, "\n")
	var bad []string
	for _, m := range stdinLine.FindAllStringSubmatch(err.Error(), 10) {
		if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) {
			from, _ := strconv.Atoi(m[2])
			to, _ := strconv.Atoi(m[3])
			line := strings.TrimSpace(excerpt(lines[n-1], from, to))
			if chain := blockChain(lines, n); chain != "" {
				line = "chain " + chain + ": " + line
			}
			bad = append(bad, m[1]+": "+line)
		}
	}
	return bad
}

// excerptContext is how much of a long line is kept on each side of the
// columns nft names.
const excerptContext = 80

// excerpt is line, or, when it is long and nft named columns from..to
// (1-based), the part around them.
func excerpt(line string, from, to int) string {
	if len(line) <= 4*excerptContext || from < 1 || to < from || to > len(line) {
		return line
	}
	start, end := max(0, from-1-excerptContext), min(len(line), to+excerptContext)
	out := line[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(line) {
		out += "…"
	}
	return out
}

// Cleanup implements proxier.Proxier.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.baseRecreated = nil, false
	clear(p.stale)
	return cleanup(ctx, p.nft)
}
