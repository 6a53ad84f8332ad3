package nftables

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// syncPartial sends, in one transaction, only what the changed Services
// alter: their chains rewritten (added, flushed, refilled), their chains
// no longer wanted flushed (deleted a sync later) and affinity sets
// deleted, and the elements of the shared sets and maps whose winner
// changed. The shared chains are not touched and nothing is listed.
func (p *Proxier) syncPartial(ctx context.Context, snap *proxier.Snapshot, changed proxier.NameSet, start time.Time) (proxier.SyncResult, error) {
	tx := p.newOps(true)
	r := newRenderer(p.opts, tx, snap)
	st := p.state
	var keys []elemKey
	for _, name := range changed.Sorted() {
		old := st.services[name]
		if old == nil {
			old = newServiceObjects()
		}
		cur := newServiceObjects()
		if svc := snap.Services[name]; svc != nil {
			r.old = old.kernelObjects
			cur = r.renderService(svc)
		}
		p.dropStale(tx, old.kernelObjects, cur.kernelObjects, start)
		st.elements.remove(name, old.elements)
		st.elements.add(name, cur.elements)
		for _, o := range []*serviceObjects{old, cur} {
			for _, e := range o.elements {
				keys = append(keys, keyOf(e))
			}
		}
		if snap.Services[name] == nil {
			cur = nil
		}
		st.setService(name, cur)
	}
	keys = uniqueKeys(keys)
	st.elements.write(tx, keys)
	logConflicts(append(r.conflicts, st.elements.conflicts(keys)...), p.opts.Family)
	took, err := p.run(ctx, tx)
	if err != nil {
		return proxier.SyncResult{KernelWrite: took}, err
	}
	klog.V(2).InfoS("Synced nftables rules", "family", p.opts.Family, "full", false, "services", len(snap.Services),
		"changed", len(changed), "operations", tx.NumOperations(), "elapsed", time.Since(start))
	return proxier.SyncResult{Written: map[string]int{tableName: tx.NumOperations()}, NoLocalEndpoints: st.noLocal(),
		KernelWrite: took}, nil
}
