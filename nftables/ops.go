package nftables

import (
	"strings"

	"sigs.k8s.io/knftables"
)

// ops takes a sync's operations: a knftables Transaction (through the
// Interface's Run: knftables' Fake in pure tests), or a textWriter, which
// writes them straight as the compact text the real nft is sent.
type ops interface {
	Add(knftables.Object)
	Flush(knftables.Object)
	Delete(knftables.Object)
	NumOperations() int
	// String is the text nft is (or would be) sent; a textWriter's ends
	// its pending run of rules, so it comes after the last operation.
	String() string
}

var (
	_ ops = (*knftables.Transaction)(nil)
	_ ops = (*textWriter)(nil)
)

// textWriter writes operations as compact `nft -f` input (compactText of
// knftables' text for the same operations, without writing that text).
// The chains, rules, elements and chain flushes a sync writes by the
// thousand it formats itself; any other operation knftables formats, in
// a transaction of its own, which also checks it.
type textWriter struct {
	c      *compactor
	family knftables.Family
	table  string // "FAMILY TABLE"
	// newTx is a transaction of the table's Interface.
	newTx func() *knftables.Transaction
	n     int
	err   error // knftables refused an operation: nothing may be sent
	// mirror, if set, gets every operation too (tests compare).
	mirror *knftables.Transaction
	// nl, if set, compiles every operation for netlink too (partial
	// syncs: mergingNFT sends it instead of the text when it can).
	nl *netlinkBatch
}

func newTextWriter(nft knftables.Interface, family knftables.Family, minRun int) *textWriter {
	return &textWriter{c: newCompactor(minRun), family: family, table: string(family) + " " + tableName, newTx: nft.NewTransaction}
}

func (w *textWriter) Add(obj knftables.Object) {
	if w.mirror != nil {
		w.mirror.Add(obj)
	}
	if w.nl != nil {
		w.nl.add(obj)
	}
	if w.err != nil {
		return
	}
	switch o := obj.(type) {
	case *knftables.Chain:
		if plainChain(o) {
			w.n++
			w.c.chainLine(chainLine{table: w.table, chain: o.Name})
			return
		}
	case *knftables.Rule:
		if plainRule(o) {
			w.n++
			if !blockable(o.Rule) {
				w.c.other("add rule " + w.table + " " + o.Chain + " " + o.Rule)
				return
			}
			w.c.chainLine(chainLine{table: w.table, chain: o.Chain, rule: o.Rule})
			return
		}
	case *knftables.Element:
		if add, ok := w.elementAdd(o); ok {
			w.n++
			w.c.element(add)
			return
		}
	}
	w.viaKnftables(func(tx *knftables.Transaction) { tx.Add(obj) })
}

func (w *textWriter) Flush(obj knftables.Object) {
	if w.mirror != nil {
		w.mirror.Flush(obj)
	}
	if w.nl != nil {
		w.nl.flush(obj)
	}
	if w.err != nil {
		return
	}
	if o, ok := obj.(*knftables.Chain); ok && plainChain(o) {
		w.n++
		w.c.other("flush chain " + w.table + " " + o.Name)
		return
	}
	w.viaKnftables(func(tx *knftables.Transaction) { tx.Flush(obj) })
}

func (w *textWriter) Delete(obj knftables.Object) {
	if w.mirror != nil {
		w.mirror.Delete(obj)
	}
	if w.nl != nil {
		w.nl.delete(obj)
	}
	if w.err == nil {
		w.viaKnftables(func(tx *knftables.Transaction) { tx.Delete(obj) })
	}
}

func (w *textWriter) NumOperations() int { return w.n }

// String is the text to send (or, after a refused operation, knftables'
// sticky-error comment, as Transaction.String ends with).
func (w *textWriter) String() string {
	if w.err != nil {
		return txErrorMark + w.err.Error()
	}
	return w.c.String()
}

// text is the text to send, or the error of a refused operation.
func (w *textWriter) text() (string, error) {
	if w.err != nil {
		return "", w.err
	}
	return w.c.String(), nil
}

// viaKnftables has knftables check and format one operation.
func (w *textWriter) viaKnftables(op func(*knftables.Transaction)) {
	tx := w.newTx()
	op(tx)
	text, err := transactionText(tx)
	if err != nil {
		w.err = err
		return
	}
	w.n += tx.NumOperations()
	for line := range strings.Lines(text) {
		w.c.line(strings.TrimSuffix(line, "\n"))
	}
}

// plainChain is a regular chain of the table with nothing but a name.
func plainChain(c *knftables.Chain) bool {
	return c.Name != "" && c.Family == "" && c.Table == "" && c.Type == nil && c.Hook == nil &&
		c.Priority == nil && c.Policy == nil && c.Device == nil && c.Comment == nil && c.Handle == nil
}

// plainRule is a rule of the table appended to its chain, without a
// comment.
func plainRule(r *knftables.Rule) bool {
	return r.Chain != "" && r.Rule != "" && r.Family == "" && r.Table == "" && r.Index == nil &&
		r.Handle == nil && r.Comment == nil
}

// elementAdd is e as the element add a compactor merges (ok false for an
// element with a comment, of another table, or malformed: knftables
// writes and checks those).
func (w *textWriter) elementAdd(e *knftables.Element) (elementAdd, bool) {
	name := e.Set
	if (e.Set == "") == (e.Map == "") || e.Family != "" || e.Table != "" || e.Comment != nil || len(e.Key) == 0 ||
		(e.Set != "" && len(e.Value) != 0) || (e.Map != "" && len(e.Value) == 0) {
		return elementAdd{}, false
	}
	if name == "" {
		name = e.Map
	}
	elem := strings.Join(e.Key, " . ")
	if len(e.Value) != 0 {
		elem += " : " + strings.Join(e.Value, " . ")
	}
	// What parseElementAdd would not take apart stays a line of its own.
	if elem == "" || strings.ContainsAny(elem, "\"{},") || strings.Contains(name, " ") {
		return elementAdd{}, false
	}
	return elementAdd{target: "add element " + w.table + " " + name, element: elem}, true
}
