package iptables

import (
	"bytes"
	"slices"
	"strconv"
)

// tableBuf accumulates one table's part of an iptables-restore input: the
// chains to declare and the rules. Buffers are reused between syncs.
type tableBuf struct {
	name   string
	chains []string
	rules  bytes.Buffer
	nrules int
}

func (t *tableBuf) reset() {
	t.chains = t.chains[:0]
	t.rules.Reset()
	t.nrules = 0
}

// chain declares a chain (which flushes it on restore).
func (t *tableBuf) chain(name string) { t.chains = append(t.chains, name) }

// line writes one line made of words separated by spaces; lines starting
// with "-A" count as rules.
func (t *tableBuf) line(words ...string) {
	for i, w := range words {
		if i > 0 {
			t.rules.WriteByte(' ')
		}
		t.rules.WriteString(w)
	}
	t.rules.WriteByte('\n')
	if len(words) > 0 && words[0] == "-A" {
		t.nrules++
	}
}

// writeTo appends "*table", the sorted chain declarations, the rules and
// COMMIT to out. Sorted declarations make iptables-nft restores much
// faster and the output deterministic.
func (t *tableBuf) writeTo(out *bytes.Buffer) {
	out.WriteString("*")
	out.WriteString(t.name)
	out.WriteByte('\n')
	slices.Sort(t.chains)
	for _, c := range t.chains {
		out.WriteByte(':')
		out.WriteString(c)
		out.WriteString(" - [0:0]\n")
	}
	out.Write(t.rules.Bytes())
	out.WriteString("COMMIT\n")
}

// probabilities caches the "--probability" strings for 1/n: formatting
// floats is expensive and the same few values recur.
type probabilities []string

func (p *probabilities) get(n int) string {
	for len(*p) <= n {
		i := len(*p)
		s := "<bad value>"
		if i > 0 {
			s = strconv.FormatFloat(1.0/float64(i), 'f', 10, 64)
		}
		*p = append(*p, s)
	}
	return (*p)[n]
}
