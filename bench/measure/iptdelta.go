package measure

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// dnatTo is the address of an iptables DNAT rule.
var dnatTo = regexp.MustCompile(`--to-destination (\d+\.\d+\.\d+\.\d+):`)

// IptablesEndpointSwap returns two `iptables-restore --noflush` payloads
// on the nat table of dump that move one endpoint of one Service to an
// unused address and back: the Service's KUBE-SVC chain rewritten to jump
// to a new KUBE-SEP chain for the new address, and the old one deleted —
// what a partial sync writes after one endpoint changed.
func IptablesEndpointSwap(dump string) (forward, back string, err error) {
	nat := natChains(dump)
	for _, svc := range nat.order {
		if !strings.HasPrefix(svc, "KUBE-SVC-") {
			continue
		}
		sep, old := firstEndpoint(nat, svc)
		if old == "" || nat.jumpedFromElsewhere(sep, svc) {
			continue // deleting sep would fail while another chain jumps to it
		}
		alt, err := unusedAddr(dump)
		if err != nil {
			return "", "", err
		}
		moved, err := unusedChain(dump, "KUBE-SEP-FLOORDELTA")
		if err != nil {
			return "", "", err
		}
		movedSvc := rewritten(nat.chains[svc], sep, moved, "", "")
		movedSep := rewritten(nat.chains[sep], sep, moved, old, alt)
		forward = sepSwap(svc, movedSvc, moved, movedSep, sep)
		back = sepSwap(svc, nat.chains[svc], sep, nat.chains[sep], moved)
		return forward, back, nil
	}
	return "", "", errors.New("iptables delta: no KUBE-SVC chain with a DNAT endpoint")
}

// chainRules is one table's rules ("-A …" lines) by chain, chains in the
// order of their first rule.
type chainRules struct {
	chains map[string][]string
	order  []string
}

func natChains(dump string) chainRules {
	c := chainRules{chains: map[string][]string{}}
	inNat := false
	for _, line := range strings.Split(dump, "\n") {
		switch {
		case line == "*nat":
			inNat = true
		case line == "COMMIT":
			inNat = false
		case inNat && strings.HasPrefix(line, "-A "):
			name := strings.Fields(line)[1]
			if _, ok := c.chains[name]; !ok {
				c.order = append(c.order, name)
			}
			c.chains[name] = append(c.chains[name], line)
		}
	}
	return c
}

// jumpedFromElsewhere reports whether a chain other than from jumps to c
// (a KUBE-SVL or KUBE-EXT chain of a Service with a Local traffic policy).
func (n chainRules) jumpedFromElsewhere(c, from string) bool {
	for _, name := range n.order {
		if name == from {
			continue
		}
		for _, r := range n.chains[name] {
			if strings.HasSuffix(r, " -j "+c) {
				return true
			}
		}
	}
	return false
}

// firstEndpoint is the first KUBE-SEP chain svc jumps to and the address
// it DNATs to ("" if none).
func firstEndpoint(nat chainRules, svc string) (sep, addr string) {
	for _, r := range nat.chains[svc] {
		f := strings.Fields(r)
		if len(f) < 2 || f[len(f)-2] != "-j" || !strings.HasPrefix(f[len(f)-1], "KUBE-SEP-") {
			continue
		}
		sep = f[len(f)-1]
		for _, s := range nat.chains[sep] {
			if m := dnatTo.FindStringSubmatch(s); m != nil {
				return sep, m[1]
			}
		}
	}
	return "", ""
}

// rewritten is rules with chain from renamed to and address old replaced by
// alt (none if old is "").
func rewritten(rules []string, from, to, old, alt string) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		r = strings.ReplaceAll(r, from, to)
		if old != "" {
			r = replaceAddr(r, old, alt)
		}
		out[i] = r
	}
	return out
}

// sepSwap is the payload that rewrites svc to svcRules, declares sep with
// sepRules and deletes gone (declared first: that flushes it, and only an
// empty chain can be deleted, as kube-proxy does it).
func sepSwap(svc string, svcRules []string, sep string, sepRules []string, gone string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*nat\n:%s - [0:0]\n:%s - [0:0]\n:%s - [0:0]\n", svc, sep, gone)
	for _, r := range append(append([]string{}, svcRules...), sepRules...) {
		b.WriteString(r + "\n")
	}
	fmt.Fprintf(&b, "-X %s\nCOMMIT\n", gone)
	return b.String()
}

// unusedChain is a chain name prefix+digits that dump does not use.
func unusedChain(dump, prefix string) (string, error) {
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("%s%06d", prefix, i)
		if !strings.Contains(dump, name) {
			return name, nil
		}
	}
	return "", errors.New("iptables delta: no unused chain name")
}
