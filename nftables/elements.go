package nftables

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/proxier"
)

// elemKey names one element: its set or map and its key.
type elemKey struct{ container, key string }

func keyOf(e *knftables.Element) elemKey {
	return elemKey{e.Set + e.Map, strings.Join(e.Key, " . ")}
}

// claim is one Service's element for a key.
type claim struct {
	svc  types.NamespacedName
	elem *knftables.Element
}

// elementTable keeps the shared sets' and maps' elements: which Services
// claim each key, and what the kernel holds since the last successful
// sync. Two Services may claim one key (bad input); the first in name
// order keeps it, as the first matching rule does in the other modes.
type elementTable struct {
	claims  map[elemKey][]claim // in Service name order
	written map[elemKey]*knftables.Element
}

func newElementTable() *elementTable {
	return &elementTable{claims: map[elemKey][]claim{}, written: map[elemKey]*knftables.Element{}}
}

// add records svc's claims.
func (t *elementTable) add(svc types.NamespacedName, elems []*knftables.Element) {
	for _, e := range elems {
		k := keyOf(e)
		cs := t.claims[k]
		i, _ := slices.BinarySearchFunc(cs, svc, func(c claim, n types.NamespacedName) int { return proxier.CompareNames(c.svc, n) })
		t.claims[k] = slices.Insert(cs, i, claim{svc, e})
	}
}

// remove drops svc's claims.
func (t *elementTable) remove(svc types.NamespacedName, elems []*knftables.Element) {
	for _, e := range elems {
		k := keyOf(e)
		cs := slices.DeleteFunc(t.claims[k], func(c claim) bool { return c.svc == svc })
		if len(cs) == 0 {
			delete(t.claims, k)
		} else {
			t.claims[k] = cs
		}
	}
}

// write adds to tx what makes the kernel's elements of keys match the
// claims' winners: a new element is added, one no longer claimed is
// deleted, and one whose value or comment changes is deleted and added
// again (nft refuses a second value for a key).
func (t *elementTable) write(tx ops, keys []elemKey) {
	for _, k := range keys {
		old := t.written[k]
		var cur *knftables.Element
		if cs := t.claims[k]; len(cs) > 0 {
			cur = cs[0].elem
		}
		switch {
		case cur == nil && old != nil:
			tx.Delete(keyOnly(old))
			delete(t.written, k)
		case cur != nil && old == nil:
			tx.Add(cur)
			t.written[k] = cur
		case cur != nil && !sameElement(cur, old):
			tx.Delete(keyOnly(old))
			tx.Add(cur)
			t.written[k] = cur
		}
	}
}

// conflicts describes the keys of keys that Services claim with
// different values.
func (t *elementTable) conflicts(keys []elemKey) []string {
	var out []string
	for _, k := range keys {
		cs := t.claims[k]
		for _, c := range cs[min(1, len(cs)):] {
			if v, kept := values(c.elem), values(cs[0].elem); v != kept {
				out = append(out, k.container+" "+k.key+": "+v+" of "+c.svc.String()+" (kept "+kept+" of "+cs[0].svc.String()+")")
			}
		}
	}
	return out
}

func values(e *knftables.Element) string { return strings.Join(e.Value, " ") }

func sameElement(a, b *knftables.Element) bool {
	return values(a) == values(b) && ptrEqual(a.Comment, b.Comment)
}

func ptrEqual(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// keyOnly is what deleting an element needs.
func keyOnly(e *knftables.Element) *knftables.Element {
	return &knftables.Element{Set: e.Set, Map: e.Map, Key: e.Key}
}
