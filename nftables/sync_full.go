package nftables

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// syncFull rewrites the whole table in one transaction: the shared
// chains, sets and maps, then every service chain the table may hold
// flushed (the wanted ones are refilled, the others deleted a sync
// later), then the chains of every Service; it deletes stale affinity
// sets. It lists the kernel only when there is no state to trust (first
// sync, after a failure or a canary alarm).
func (p *Proxier) syncFull(ctx context.Context, snap *proxier.Snapshot, start time.Time) (proxier.SyncResult, error) {
	known, err := p.knownObjects(ctx)
	if err != nil {
		p.state = nil
		return proxier.SyncResult{Full: true}, fmt.Errorf("nftables %s: %w", p.opts.Family, err)
	}
	tx := p.newOps(false)
	r := newRenderer(p.opts, tx, snap)
	r.old = kernelObjects{affinitySets: known.affinitySets}
	r.existing = known.chains
	r.noTable = known.noTable
	objs, elems := r.renderFull(snap, !p.baseRecreated)
	state := newSyncState(objs, elems, globalKey(snap))
	wanted := state.owned()
	p.markStale(known, wanted, start)
	deleteStaleSets(tx, known, wanted)
	logConflicts(r.conflicts, p.opts.Family)
	took, err := p.run(ctx, tx)
	if err != nil {
		return proxier.SyncResult{Full: true, KernelWrite: took}, err
	}
	p.baseRecreated = true
	p.state = state
	klog.V(2).InfoS("Synced nftables rules", "family", p.opts.Family, "full", true, "services", len(snap.Services),
		"operations", tx.NumOperations(), "elapsed", time.Since(start))
	return proxier.SyncResult{Full: true, Written: map[string]int{tableName: tx.NumOperations()},
		NoLocalEndpoints: state.noLocal(), KernelWrite: took}, nil
}

// knownObjects are the per-service objects in the table: what kproxy
// wrote (and the stale chains) when it has a state, else what the
// kernel lists.
func (p *Proxier) knownObjects(ctx context.Context) (kernelObjects, error) {
	if p.state == nil {
		return p.listKernel(ctx)
	}
	k := p.state.owned()
	for c := range p.stale {
		k.chains[c] = true
	}
	return k, nil
}

// listKernel reads the service chains and affinity sets in the table (none
// if there is no table yet).
func (p *Proxier) listKernel(ctx context.Context) (kernelObjects, error) {
	k := newKernelObjects()
	chains, err := p.nft.List(ctx, "chains")
	if knftables.IsNotFound(err) {
		k.noTable = true
		return k, nil
	}
	if err != nil {
		return k, fmt.Errorf("list chains: %w", err)
	}
	if len(chains) == 0 {
		// No table (netlink lists a family's chains), or one without
		// chains: only listing the table's sets tells.
		return p.checkNoTable(ctx, k)
	}
	for _, c := range chains {
		if isServiceChain(c) {
			k.chains[c] = true
		}
	}
	sets, err := p.nft.List(ctx, "sets")
	if err != nil && !isNoEntry(err) {
		return k, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		if isAffinitySet(s) {
			k.affinitySets[s] = 0
		}
	}
	return k, nil
}

// checkNoTable marks k as of no table when listing the table's sets
// fails for want of the table (an empty table takes the usual path).
func (p *Proxier) checkNoTable(ctx context.Context, k kernelObjects) (kernelObjects, error) {
	_, err := p.nft.List(ctx, "sets")
	switch {
	case err == nil:
	case isNoEntry(err):
		k.noTable = true
	default:
		return k, fmt.Errorf("list sets: %w", err)
	}
	return k, nil
}

// isNoEntry tells a listing's "no such table" (google/nftables, under
// knftables' netlink listing, reports ENOENT only in its message).
func isNoEntry(err error) bool {
	return knftables.IsNotFound(err) || errors.Is(err, syscall.ENOENT) || strings.Contains(err.Error(), syscall.ENOENT.Error())
}

// globalKey is what the shared chains depend on besides the Services: the
// Node and the ServiceCIDRs. A change makes the next sync a full one.
func globalKey(snap *proxier.Snapshot) string { return fmt.Sprint(snap.Node, snap.ServiceCIDRs) }
