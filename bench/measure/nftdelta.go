package measure

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// nftTable is an `nft list table` dump read back: the table's family and
// name and every chain's rules in order (a base chain's "type … policy"
// line left out).
type nftTable struct {
	family, name string
	chains       map[string][]string
	order        []string
}

func parseNftTable(dump string) (nftTable, error) {
	t := nftTable{chains: map[string][]string{}}
	cur := ""
	for _, line := range strings.Split(dump, "\n") {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		switch {
		case len(f) == 4 && f[0] == "table" && f[3] == "{":
			t.family, t.name = f[1], f[2]
		case len(f) == 3 && f[0] == "chain" && f[2] == "{":
			cur = f[1]
			t.chains[cur] = nil
			t.order = append(t.order, cur)
		case line == "}":
			cur = ""
		case cur != "" && line != "" && !strings.HasPrefix(line, "type "):
			t.chains[cur] = append(t.chains[cur], line)
		}
	}
	if t.family == "" || len(t.order) == 0 {
		return t, errors.New("nft delta: no table with chains in the dump")
	}
	return t, nil
}

var (
	// chainRef is a jump or goto to another chain in a rule.
	chainRef = regexp.MustCompile(`\b(?:goto|jump) ([^\s,}]+)`)
	// dnatAddr is the first IPv4 address a dnat statement names.
	dnatAddr = regexp.MustCompile(`dnat\b.*?\b(\d+\.\d+\.\d+\.\d+)\b`)
	// endpointAddr is the address in an upstream endpoint chain's name.
	endpointAddr = regexp.MustCompile(`^endpoint-[^_]*__(\d+\.\d+\.\d+\.\d+)/`)
)

// NftEndpointSwap returns two `nft -f` transactions on the table in dump
// that move one endpoint of one Service to an unused address and back: the
// work of a partial sync after one Service's endpoint changed. The
// Service's chain is flushed and refilled; an endpoint chain it jumps to
// (upstream's layout) is added under the new address and the old one
// deleted. Set elements (kproxy's hairpin set) are not included.
func NftEndpointSwap(dump string) (forward, back string, err error) {
	t, err := parseNftTable(dump)
	if err != nil {
		return "", "", err
	}
	for _, svc := range t.order {
		old := serviceEndpointAddr(t, svc)
		if old == "" {
			continue
		}
		alt, err := unusedAddr(dump)
		if err != nil {
			return "", "", err
		}
		moved := t.swapped(svc, old, alt)
		return t.swapDelta(svc, old, alt), moved.swapDelta(svc, alt, old), nil
	}
	return "", "", errors.New("nft delta: no service chain with an endpoint address")
}

// serviceEndpointAddr is the address of the first endpoint chain svc
// refers to, or the first one its dnat names; "" if svc is not a Service
// chain without affinity sets.
func serviceEndpointAddr(t nftTable, svc string) string {
	if !strings.HasPrefix(svc, "service-") {
		return ""
	}
	rules := t.chains[svc]
	for _, r := range rules {
		if strings.Contains(r, "@") {
			return "" // affinity sets would need renaming too
		}
	}
	for _, r := range rules {
		for _, m := range chainRef.FindAllStringSubmatch(r, -1) {
			if a := endpointAddr.FindStringSubmatch(m[1]); a != nil {
				return a[1]
			}
		}
		if a := dnatAddr.FindStringSubmatch(r); a != nil {
			return a[1]
		}
	}
	return ""
}

// endpointChains are the chains svc jumps to whose names hold addr.
func (t nftTable) endpointChains(svc, addr string) []string {
	seen := map[string]bool{}
	for _, r := range t.chains[svc] {
		for _, m := range chainRef.FindAllStringSubmatch(r, -1) {
			if _, ok := t.chains[m[1]]; ok && replaceAddr(m[1], addr, "") != m[1] {
				seen[m[1]] = true
			}
		}
	}
	var out []string
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// swapDelta is the transaction that moves svc's endpoint from old to alt.
func (t nftTable) swapDelta(svc, old, alt string) string {
	var b strings.Builder
	at := t.family + " " + t.name + " "
	eps := t.endpointChains(svc, old)
	for _, c := range eps {
		moved := replaceAddr(c, old, alt)
		fmt.Fprintf(&b, "add chain %s%s\n", at, moved)
		for _, r := range t.chains[c] {
			fmt.Fprintf(&b, "add rule %s%s %s\n", at, moved, replaceAddr(r, old, alt))
		}
	}
	fmt.Fprintf(&b, "flush chain %s%s\n", at, svc)
	for _, r := range t.chains[svc] {
		fmt.Fprintf(&b, "add rule %s%s %s\n", at, svc, replaceAddr(r, old, alt))
	}
	for _, c := range eps {
		fmt.Fprintf(&b, "delete chain %s%s\n", at, c)
	}
	return b.String()
}

// swapped is the table after swapDelta(svc, old, alt) was applied.
func (t nftTable) swapped(svc, old, alt string) nftTable {
	out := nftTable{family: t.family, name: t.name, chains: map[string][]string{}}
	eps := map[string]bool{}
	for _, c := range t.endpointChains(svc, old) {
		eps[c] = true
	}
	for _, c := range t.order {
		name, rules := c, t.chains[c]
		if eps[c] || c == svc {
			name, rules = replaceAddr(c, old, alt), nil
			for _, r := range t.chains[c] {
				rules = append(rules, replaceAddr(r, old, alt))
			}
		}
		out.chains[name] = rules
		out.order = append(out.order, name)
	}
	return out
}

// replaceAddr replaces the IPv4 address old in s, not where it is part of
// a longer address (10.0.0.1 in 10.0.0.10 or 110.0.0.1).
func replaceAddr(s, old, alt string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(old)
		whole := (i == 0 || !isDigit(s[i-1]) && s[i-1] != '.') && (j == len(s) || !isDigit(s[j]))
		b.WriteString(s[:i])
		if whole {
			b.WriteString(alt)
		} else {
			b.WriteString(old)
		}
		s = s[j:]
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// unusedAddr is an address that appears nowhere in dump.
func unusedAddr(dump string) (string, error) {
	for i := 1; i < 255; i++ {
		a := fmt.Sprintf("10.255.254.%d", i)
		if replaceAddr(dump, a, "") == dump {
			return a, nil
		}
	}
	return "", errors.New("delta: no unused address in 10.255.254.0/24")
}
