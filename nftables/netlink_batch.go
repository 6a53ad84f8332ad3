package nftables

import (
	"fmt"
	"reflect"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"sigs.k8s.io/knftables"
)

// netlinkBatch is a partial sync's operations compiled for netlink, in
// the order the sync wrote them. The first operation it cannot compile
// spoils it, and the sync goes by nft -f with the text written beside it.
type netlinkBatch struct {
	compiler ruleCompiler
	table    *gnft.Table
	ops      []func(*gnft.Conn) error
	// spoiled says why the batch cannot stand for the sync: the first
	// operation it could not compile, or its size.
	spoiled string
	// added are the chains the batch adds; jumped, those a rule or an
	// element jumped to before the batch added them.
	added, jumped map[string]bool
}

func newNetlinkBatch(family knftables.Family) *netlinkBatch {
	t := &gnft.Table{Name: tableName, Family: gnft.TableFamilyIPv4}
	if family == knftables.IPv6Family {
		t.Family = gnft.TableFamilyIPv6
	}
	return &netlinkBatch{compiler: ruleCompiler{v6: family == knftables.IPv6Family}, table: t,
		added: map[string]bool{}, jumped: map[string]bool{}}
}

// maxNetlinkOps bounds a batch: the library sends it in one sendmsg,
// which must fit the socket's send buffer (about 200 KiB by default; an
// operation takes up to a few hundred bytes). A sync that changes more
// goes by nft -f, whose fixed cost is then a small part of it.
const maxNetlinkOps = 256

// unusable says why the batch cannot stand for the sync ("" when it can).
func (b *netlinkBatch) unusable() string {
	switch {
	case b.spoiled != "":
		return b.spoiled
	case len(b.ops) == 0:
		return "no operations"
	}
	return ""
}

// take tells whether the batch still takes operations; past
// maxNetlinkOps it spoils (and compiles nothing more).
func (b *netlinkBatch) take() bool {
	if b.spoiled == "" && len(b.ops) >= maxNetlinkOps {
		b.spoiled = fmt.Sprintf("more than %d operations", maxNetlinkOps)
	}
	return b.spoiled == ""
}

// do queues an operation that cannot fail before the batch is sent.
func (b *netlinkBatch) do(op func(*gnft.Conn)) {
	b.ops = append(b.ops, func(conn *gnft.Conn) error { op(conn); return nil })
}

func (b *netlinkBatch) chain(name string) *gnft.Chain { return &gnft.Chain{Name: name, Table: b.table} }

func (b *netlinkBatch) set(name string) *gnft.Set { return &gnft.Set{Name: name, Table: b.table} }

func (b *netlinkBatch) spoil(verb string, obj knftables.Object) {
	if b.spoiled == "" {
		b.spoiled = fmt.Sprintf("does not compile: %s %T %+v", verb, obj, obj)
	}
}

// jumpsTo records the chain a rule or element jumps to, if any.
func (b *netlinkBatch) jumpsTo(chain string) {
	if chain != "" && !b.added[chain] {
		b.jumped[chain] = true
	}
}

// addChain queues a chain's add; a chain jumped to earlier in the batch
// spoils it: nft's table blocks add every chain before any rule, so
// that text would load, but this batch would not. (A jump to a chain the
// kernel already has, added again later, spoils it too, needlessly; the
// renderer adds a port's chains before any rule or element jumps to them,
// so neither happens in a partial sync today.)
func (b *netlinkBatch) addChain(name string) {
	if b.jumped[name] {
		b.spoiled = "chain " + name + " added after a jump to it"
		return
	}
	b.added[name] = true
	c := b.chain(name)
	b.do(func(conn *gnft.Conn) { conn.AddChain(c) })
}

func (b *netlinkBatch) add(obj knftables.Object) {
	if !b.take() {
		return
	}
	switch o := obj.(type) {
	case *knftables.Chain:
		if plainChain(o) {
			b.addChain(o.Name)
			return
		}
	case *knftables.Rule:
		if r, ok := b.rule(o); ok {
			for _, e := range r.Exprs {
				if v, ok := e.(*expr.Verdict); ok {
					b.jumpsTo(v.Chain)
				}
			}
			b.do(func(conn *gnft.Conn) { conn.AddRule(r) })
			return
		}
	case *knftables.Element:
		if name, el, ok := b.compiler.compileElement(o, true); ok {
			if el.VerdictData != nil {
				b.jumpsTo(el.VerdictData.Chain)
			}
			s := b.set(name)
			b.ops = append(b.ops, func(conn *gnft.Conn) error { return conn.SetAddElements(s, []gnft.SetElement{el}) })
			return
		}
	}
	b.spoil("add", obj)
}

// rule is r appended to its chain, or ok false.
func (b *netlinkBatch) rule(r *knftables.Rule) (*gnft.Rule, bool) {
	if r.Chain == "" || r.Family != "" || r.Table != "" || r.Index != nil || r.Handle != nil {
		return nil, false
	}
	exprs, ok := b.compiler.compile(r.Rule)
	if !ok {
		return nil, false
	}
	out := &gnft.Rule{Table: b.table, Chain: b.chain(r.Chain), Exprs: exprs}
	if r.Comment != nil {
		out.UserData = userdata.AppendString(nil, userdata.TypeComment, *r.Comment)
	}
	return out, true
}

func (b *netlinkBatch) flush(obj knftables.Object) {
	if !b.take() {
		return
	}
	if o, ok := obj.(*knftables.Chain); ok && plainChain(o) {
		c := b.chain(o.Name)
		b.do(func(conn *gnft.Conn) { conn.FlushChain(c) })
		return
	}
	b.spoil("flush", obj)
}

func (b *netlinkBatch) delete(obj knftables.Object) {
	if !b.take() {
		return
	}
	switch o := obj.(type) {
	case *knftables.Chain:
		if plainChain(o) {
			c := b.chain(o.Name)
			b.do(func(conn *gnft.Conn) { conn.DelChain(c) })
			return
		}
	case *knftables.Set:
		if o.Name != "" && reflect.DeepEqual(*o, knftables.Set{Name: o.Name}) {
			s := b.set(o.Name)
			b.do(func(conn *gnft.Conn) { conn.DelSet(s) })
			return
		}
	case *knftables.Element:
		if name, el, ok := b.compiler.compileElement(o, false); ok {
			s := b.set(name)
			b.ops = append(b.ops, func(conn *gnft.Conn) error { return conn.SetDeleteElements(s, []gnft.SetElement{el}) })
			return
		}
	}
	b.spoil("delete", obj)
}
