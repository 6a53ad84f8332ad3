package iptables

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/kproxy/kproxy/proxier"
)

// renderer turns snapshots into iptables-restore input. It keeps its
// buffers between syncs; it is not safe for concurrent use.
type renderer struct {
	opts        Options // normalized
	randomFully bool
	masqMark    string // "0x004000", as kube-proxy writes it
	probs       probabilities

	filter, nat tableBuf
	// skipped receives the per-Service chains of unchanged Services on a
	// partial sync, so that rule counts stay right without writing them.
	skipped tableBuf
	out     bytes.Buffer

	// owned collects, by table, every chain of the desired state (written
	// or skipped).
	owned                            map[string]map[string]bool
	noLocalInternal, noLocalExternal int
}

// renderResult is one render's output and bookkeeping.
type renderResult struct {
	data    []byte // owned by the renderer until its next run
	owned   map[string]map[string]bool
	rules   map[string]int // rules kproxy owns after the sync, by table
	written map[string]int // rules in data, by table
	noLocal map[string]int
}

func newRenderer(opts Options, randomFully bool) *renderer {
	return &renderer{
		opts:        opts,
		randomFully: randomFully,
		masqMark:    fmt.Sprintf("%#08x", 1<<uint(opts.MasqueradeBit)),
		filter:      tableBuf{name: tableFilter},
		nat:         tableBuf{name: tableNAT},
		skipped:     tableBuf{name: tableNAT},
	}
}

// Render returns exactly the iptables-restore input a full sync of snap
// writes (without the jump rules in built-in chains, which are ensured one
// by one, and without deletions of stale chains). It does no I/O; it
// assumes MASQUERADE --random-fully is available, as on every kernel and
// iptables of the last decade.
func Render(snap *proxier.Snapshot, opts Options) (string, error) {
	opts, err := opts.normalized()
	if err != nil {
		return "", err
	}
	if snap == nil || snap.Family != opts.Family {
		return "", fmt.Errorf("iptables: render: snapshot is not of family %s", opts.Family)
	}
	r := newRenderer(opts, true)
	res := r.render(snap, nil, nil)
	return string(res.data), nil
}

// render builds the restore input of a full sync with no stale chains.
func (r *renderer) render(snap *proxier.Snapshot, write proxier.NameSet, stale map[string][]string) renderResult {
	r.build(snap, write)
	return r.finish(stale)
}

// build renders snap into the table buffers and records the chains of the
// desired state. write, when not nil, limits the per-Service chains
// written to those Services (a partial sync); the others are rendered
// into a scratch buffer only to count their rules.
func (r *renderer) build(snap *proxier.Snapshot, write proxier.NameSet) {
	r.filter.reset()
	r.nat.reset()
	r.skipped.reset()
	r.out.Reset()
	r.owned = map[string]map[string]bool{tableFilter: {}, tableNAT: {}}
	r.noLocalInternal, r.noLocalExternal = 0, 0

	r.writeStaticHead(snap)
	for _, name := range snap.SortedNames() {
		svc := snap.Services[name]
		out := &r.nat
		if write != nil && !write.Has(name) {
			out = &r.skipped
		}
		for i := range svc.Ports {
			r.writePort(snap, &svc.Ports[i], out)
		}
	}
	r.writeStaticTail(snap)

	for _, c := range r.filter.chains {
		r.owned[tableFilter][c] = true
	}
	for _, c := range r.nat.chains {
		r.owned[tableNAT][c] = true
	}
	for _, c := range r.skipped.chains {
		r.owned[tableNAT][c] = true
	}
}

// finish appends the deletion of stale chains (by table) and produces the
// restore input.
func (r *renderer) finish(stale map[string][]string) renderResult {
	written := map[string]int{tableFilter: r.filter.nrules, tableNAT: r.nat.nrules}
	rules := map[string]int{tableFilter: r.filter.nrules, tableNAT: r.nat.nrules + r.skipped.nrules}
	for _, tb := range []*tableBuf{&r.filter, &r.nat} {
		for _, c := range stale[tb.name] {
			// Declaring flushes the chain; then it can be deleted.
			tb.chain(c)
			tb.line("-X", c)
		}
	}
	r.out.Reset()
	r.filter.writeTo(&r.out)
	r.nat.writeTo(&r.out)
	return renderResult{
		data:    r.out.Bytes(),
		owned:   r.owned,
		rules:   rules,
		written: written,
		noLocal: map[string]int{"internal": r.noLocalInternal, "external": r.noLocalExternal},
	}
}

// nodeIP is the node's primary IP of this family, if known.
func nodeIP(snap *proxier.Snapshot) netip.Addr {
	if len(snap.Node.IPs) > 0 {
		return snap.Node.IPs[0]
	}
	return netip.Addr{}
}

func quote(s string) string { return `"` + s + `"` }

func itoa(n int32) string { return strconv.Itoa(int(n)) }
