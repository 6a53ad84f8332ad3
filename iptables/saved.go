package iptables

import (
	"bytes"
	"github.com/kproxy/kproxy/internal/xtables"
	"strings"
)

// savedStatic is what a full sync needs, besides the chain sums, from the
// iptables-save output it reads anyway: which chains exist and which jump
// rules to kproxy's chains are already in place, by table. With it a sync
// over existing rules (a restart) ensures the jump rules and canaries
// without running one iptables command per rule, each of which makes
// iptables-nft fetch the whole table again.
type savedStatic map[string]*savedTable

type savedTable struct {
	chains map[string]bool
	jumps  map[string]bool // "-A CHAIN ..." lines that jump to a KUBE-/KPROXY- chain, from built-in chains
}

// readStatic collects the chain names and the built-in chains' rules that
// jump to kproxy's (or kube-proxy's) chains from one table's save output.
func readStatic(save []byte) *savedTable {
	t := &savedTable{chains: map[string]bool{}, jumps: map[string]bool{}}
	for len(save) > 0 {
		line := save
		if i := bytes.IndexByte(save, '\n'); i >= 0 {
			line, save = save[:i], save[i+1:]
		} else {
			save = nil
		}
		switch {
		case bytes.HasPrefix(line, []byte(":")):
			name, _, _ := strings.Cut(string(line[1:]), " ")
			t.chains[name] = true
		case bytes.HasPrefix(line, []byte("-A ")):
			chain, _, _ := bytes.Cut(line[3:], []byte(" "))
			if len(chain) > 0 && chain[0] >= 'A' && chain[0] <= 'Z' && !xtables.IsOwnChain(string(chain)) &&
				(bytes.Contains(line, []byte(" -j KUBE-")) || bytes.Contains(line, []byte(" -j KPROXY-"))) {
				t.jumps[string(line)] = true
			}
		}
	}
	return t
}

// saveLine is the jump rule as iptables-save prints it.
func (j jumpRule) saveLine() string {
	var b strings.Builder
	b.WriteString("-A " + j.from)
	for _, w := range j.extra {
		b.WriteString(" " + w)
	}
	if j.comment != "" {
		b.WriteString(" -m comment --comment " + saveQuote(j.comment))
	}
	b.WriteString(" -j " + j.to)
	return b.String()
}

// hasChain reports whether the saved table has chain; false when the
// table was not read (s is nil).
func (s savedStatic) hasChain(table, chain string) bool {
	t := s[table]
	return t != nil && t.chains[chain]
}

// hasJump reports whether the saved table has the jump rule exactly as
// kproxy writes it; false when unknown, and the caller then asks the
// kernel (iptables -C), which also finds a rule saved in another form.
func (s savedStatic) hasJump(j jumpRule) bool {
	t := s[j.table]
	return t != nil && t.jumps[j.saveLine()]
}
