package nftables

import (
	"net/netip"
	"strings"

	gnft "github.com/google/nftables"
	"sigs.k8s.io/knftables"
)

// keyField is one field of a set's key (a concatenation's fields are
// each padded to 4 bytes, the kernel's register size).
type keyField int

const (
	fieldAddr keyField = iota
	fieldProto
	fieldPort
)

// elementLayout is a shared set's or map's key, and whether it maps to
// verdicts.
type elementLayout struct {
	key     []keyField
	verdict bool
}

// elementLayouts are the layouts of the shared sets and maps a partial
// sync changes elements of, read from the keys writeStatic declares them
// with.
var elementLayouts = func() map[string]elementLayout {
	layouts := map[string]elementLayout{
		setClusterIPs:         {keyFields(clusterIPsKey), false},
		setHairpinConnections: {keyFields(hairpinKey), false},
	}
	for _, m := range verdictMaps {
		layouts[m.name] = elementLayout{keyFields(m.key), true}
	}
	return layouts
}()

// keyFields reads a key written with "addr" for the family's address type.
func keyFields(key string) []keyField {
	byName := map[string]keyField{"addr": fieldAddr, "inet_proto": fieldProto, "inet_service": fieldPort}
	var fields []keyField
	for _, name := range strings.Split(key, " . ") {
		f, ok := byName[name]
		if !ok {
			panic("nftables: no netlink layout for key field " + name)
		}
		fields = append(fields, f)
	}
	return fields
}

// compileElement is e as a netlink set element and the name of its set
// or map, or ok false for a set kproxy does not know or a malformed key.
// withValue false leaves the value out (deletes name only the key).
func (c ruleCompiler) compileElement(e *knftables.Element, withValue bool) (name string, el gnft.SetElement, ok bool) {
	name = e.Set + e.Map
	layout, known := elementLayouts[name]
	if !known || e.Family != "" || e.Table != "" || (e.Map != "") != layout.verdict || len(e.Key) != len(layout.key) {
		return "", el, false
	}
	if e.Comment != nil {
		el.Comment = *e.Comment
	}
	for i, f := range layout.key {
		b, ok := c.keyBytes(f, e.Key[i])
		if !ok {
			return "", el, false
		}
		el.Key = append(el.Key, b...)
		el.Key = append(el.Key, make([]byte, (4-len(b)%4)%4)...)
	}
	if !layout.verdict {
		return name, el, len(e.Value) == 0
	}
	if !withValue {
		return name, el, true
	}
	if len(e.Value) != 1 {
		return "", el, false
	}
	v, ok := parseVerdict(strings.Fields(e.Value[0]))
	if !ok {
		return "", el, false
	}
	el.VerdictData = v
	return name, el, true
}

// keyBytes is one key field as the kernel keeps it.
func (c ruleCompiler) keyBytes(f keyField, s string) ([]byte, bool) {
	switch f {
	case fieldAddr:
		a, err := netip.ParseAddr(s)
		if err != nil || a.Is6() != c.v6 || a.Is4In6() || a.Zone() != "" {
			return nil, false
		}
		return a.AsSlice(), true
	case fieldProto:
		p, ok := protoNumbers[s]
		return []byte{p}, ok
	case fieldPort:
		return portBytes(s)
	}
	return nil, false
}
