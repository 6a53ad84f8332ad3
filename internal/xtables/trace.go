package xtables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Tracer evaluates iptables rules for a connection's first packet, as the
// kernel would, for the modes' packet-flow tests: Run walks one chain
// (and those it jumps to) and returns every outcome, following both ways
// of each random choice. Which hooks a packet passes, and in which order,
// is the mode's part (IPVS, for one, sits between them). A match or target
// the tracer does not know fails the test, so that no rule is silently
// ignored.
type Tracer struct {
	// Chains are the rules by table and chain, as the words after
	// "-A chain".
	Chains map[string]map[string][][]string
	// IsLocal tells the node's own addresses (addrtype LOCAL).
	IsLocal func(netip.Addr) bool
	// MatchSet evaluates "--match-set name flags" (ipset); nil fails the
	// test on such a match.
	MatchSet func(name, flags string, p TracePacket) bool
	// RedirectAddr is the address REDIRECT rewrites the destination of
	// incoming traffic to (the node's address); the node's own traffic is
	// redirected to loopback.
	RedirectAddr netip.Addr
	t            interface{ Fatalf(string, ...any) }
}

// TracePacket is a connection's first packet as the tracer follows it.
type TracePacket struct {
	Src, Dst netip.Addr
	DstPort  int
	Protocol string // lower case: "tcp", "udp", "sctp"
	Mark     uint32
	// In is the incoming interface; "" for the node's own traffic.
	In string
	// DNAT is the "ip:port" a DNAT rewrote the destination to.
	DNAT string
	// RedirectPort is the local port a REDIRECT sent the packet to.
	RedirectPort int
}

// Translated reports whether conntrack has the connection as DNATed
// (DNAT or REDIRECT).
func (p TracePacket) Translated() bool { return p.DNAT != "" || p.RedirectPort != 0 }

func (p TracePacket) String() string {
	return fmt.Sprintf("%s -> %s:%d/%s", p.Src, p.Dst, p.DstPort, p.Protocol)
}

// TraceResult is one outcome of Run: the packet as it left the chain and
// how. Verdict is "" when it fell off the end, else the terminating
// target: ACCEPT, DROP, REJECT, RETURN, DNAT, REDIRECT or MASQUERADE.
type TraceResult struct {
	Packet  TracePacket
	Verdict string
}

// NewTracer reads iptables-restore text (or iptables-save output); t
// receives the failures.
func NewTracer(t interface{ Fatalf(string, ...any) }, restore string) *Tracer {
	tables, err := ParseRestore(restore)
	if err != nil {
		t.Fatalf("tracer: parse rules: %v", err)
	}
	tr := &Tracer{t: t, Chains: map[string]map[string][][]string{}}
	for _, tb := range tables {
		chains := tr.table(tb.Name)
		for _, c := range tb.Chains {
			chains[c] = nil
		}
		for _, l := range tb.Lines {
			if len(l.Words) == 1 && l.Words[0] == "-S" {
				continue // a listing (iptables' listAllMin)
			}
			if l.Words[0] != "-A" || len(l.Words) < 2 {
				t.Fatalf("tracer: line %d: only -A is understood: %v", l.LineNo, l.Words)
			}
			chains[l.Words[1]] = append(chains[l.Words[1]], l.Words[2:])
		}
	}
	return tr
}

func (tr *Tracer) table(name string) map[string][][]string {
	if tr.Chains[name] == nil {
		tr.Chains[name] = map[string][][]string{}
	}
	return tr.Chains[name]
}

// Insert puts a rule (the words after "-A chain") at the top of chain, as
// a jump rule inserted with -I.
func (tr *Tracer) Insert(table, chain string, words []string) {
	chains := tr.table(table)
	chains[chain] = append([][]string{words}, chains[chain]...)
}

// Append adds a rule (the words after "-A chain") at the end of chain.
func (tr *Tracer) Append(table, chain string, words []string) {
	chains := tr.table(table)
	chains[chain] = append(chains[chain], words)
}

// InsertRule is Insert of a rule written as one string ("double quotes"
// group words).
func (tr *Tracer) InsertRule(table, chain, rule string) {
	words, err := splitWords(rule)
	if err != nil {
		tr.t.Fatalf("tracer: %v", err)
	}
	tr.Insert(table, chain, words)
}

// Run evaluates chain for p and returns every outcome.
func (tr *Tracer) Run(table, chain string, p TracePacket) []TraceResult {
	return tr.runFrom(table, chain, 0, p)
}

// runFrom evaluates chain from rule i on.
func (tr *Tracer) runFrom(table, chain string, i int, p TracePacket) []TraceResult {
	rules := tr.Chains[table][chain]
	for ; i < len(rules); i++ {
		matched, random, target, args := tr.match(rules[i], p)
		if !matched {
			continue
		}
		var out []TraceResult
		for _, r := range tr.target(table, target, args, p) {
			if r.Verdict == "" {
				out = append(out, tr.runFrom(table, chain, i+1, r.Packet)...)
			} else {
				out = append(out, r)
			}
		}
		if random {
			out = append(out, tr.runFrom(table, chain, i+1, p)...)
		}
		return out
	}
	return []TraceResult{{Packet: p}}
}

// target applies a rule's target; Verdict "" means go on after the rule.
func (tr *Tracer) target(table, target string, args []string, p TracePacket) []TraceResult {
	switch target {
	case "":
		return []TraceResult{{Packet: p}}
	case "ACCEPT", "DROP", "RETURN", "MASQUERADE":
		return []TraceResult{{Packet: p, Verdict: target}}
	case "REJECT":
		if len(args) != 0 && (len(args) != 2 || args[0] != "--reject-with" ||
			!strings.HasSuffix(args[1], "-port-unreachable") && args[1] != "tcp-reset") {
			tr.t.Fatalf("tracer: unexpected REJECT options %v", args)
		}
		return []TraceResult{{Packet: p, Verdict: target}}
	case "MARK":
		p.Mark = tr.mark(p.Mark, args)
		return []TraceResult{{Packet: p}}
	case "DNAT":
		if len(args) != 2 || args[0] != "--to-destination" {
			tr.t.Fatalf("tracer: unknown DNAT options %v", args)
		}
		ap := netip.MustParseAddrPort(args[1])
		p.DNAT, p.Dst, p.DstPort = args[1], ap.Addr(), int(ap.Port())
		return []TraceResult{{Packet: p, Verdict: target}}
	case "REDIRECT":
		return []TraceResult{{Packet: tr.redirect(p, args), Verdict: target}}
	}
	if _, ok := tr.Chains[table][target]; !ok {
		tr.t.Fatalf("tracer: jump to undeclared chain %s/%s", table, target)
	}
	var out []TraceResult
	for _, r := range tr.Run(table, target, p) {
		if r.Verdict == "RETURN" {
			r.Verdict = ""
		}
		out = append(out, r)
	}
	return out
}

// mark applies a MARK target's options.
func (tr *Tracer) mark(mark uint32, args []string) uint32 {
	if len(args) != 2 {
		tr.t.Fatalf("tracer: bad MARK %v", args)
	}
	val, mask, _ := strings.Cut(args[1], "/")
	v, err := strconv.ParseUint(val, 0, 32)
	m := uint64(0xffffffff)
	if err == nil && mask != "" {
		m, err = strconv.ParseUint(mask, 0, 32)
	}
	if err != nil {
		tr.t.Fatalf("tracer: bad MARK %v", args)
	}
	switch args[0] {
	case "--set-xmark": // mark = (mark & ^mask) ^ value
		return (mark &^ uint32(m)) ^ uint32(v)
	case "--or-mark":
		return mark | uint32(v)
	case "--xor-mark":
		return mark ^ uint32(v)
	}
	tr.t.Fatalf("tracer: unknown MARK option %v", args)
	return mark
}

// redirect applies REDIRECT: the destination becomes the node (loopback
// for the node's own traffic) and the given port.
func (tr *Tracer) redirect(p TracePacket, args []string) TracePacket {
	if len(args) != 2 || args[0] != "--to-ports" {
		tr.t.Fatalf("tracer: unknown REDIRECT options %v", args)
	}
	port, err := strconv.Atoi(args[1])
	if err != nil {
		tr.t.Fatalf("tracer: bad REDIRECT port %v", args)
	}
	p.Dst = tr.RedirectAddr
	if p.In == "" {
		p.Dst = netip.MustParseAddr("127.0.0.1")
		if p.Src.Is6() {
			p.Dst = netip.IPv6Loopback()
		}
	}
	p.RedirectPort, p.DstPort = port, port
	return p
}

// match evaluates a rule's matches; it returns the target and its
// options. random is true when a statistic match made the choice.
func (tr *Tracer) match(words []string, p TracePacket) (matched, random bool, target string, args []string) {
	matched = true
	negated := false
	for i := 0; i < len(words); i++ {
		w := words[i]
		next := func() string {
			i++
			if i >= len(words) {
				tr.t.Fatalf("tracer: option %s without value in %v", w, words)
			}
			return words[i]
		}
		switch w {
		case "!":
			negated = true
			continue
		case "-j":
			return matched, random && matched, next(), words[i+1:]
		case "--probability":
			next()
			random = true
			continue
		}
		ok, checked := tr.addressOption(w, next, p)
		if !checked {
			ok, checked = tr.moduleOption(w, next, p, words)
		}
		if checked {
			if ok == negated {
				matched = false
			}
			negated = false
		}
	}
	return matched, random && matched, "", nil
}

// addressOption evaluates an option of the packet's addresses, ports and
// interface; checked is false for any other option.
func (tr *Tracer) addressOption(w string, next func() string, p TracePacket) (ok, checked bool) {
	switch w {
	case "-p":
		return next() == p.Protocol, true
	case "-s":
		return tr.addrMatches(next(), p.Src), true
	case "-d":
		return tr.addrMatches(next(), p.Dst), true
	case "-i":
		name := next()
		prefix, wild := strings.CutSuffix(name, "+")
		return p.In != "" && (p.In == name || wild && strings.HasPrefix(p.In, prefix)), true
	case "--dport":
		return next() == strconv.Itoa(p.DstPort), true
	case "--dports":
		return slices.Contains(strings.Split(next(), ","), strconv.Itoa(p.DstPort)), true
	}
	return false, false
}

// moduleOption evaluates an option of a match module (-m); checked is
// false for the options that only configure one (comments, recent's and
// statistic's parameters). An unknown option fails the test.
func (tr *Tracer) moduleOption(w string, next func() string, p TracePacket, words []string) (ok, checked bool) {
	switch w {
	case "-m", "--comment", "--name", "--seconds", "--reap", "--rsource", "--set", "--mode", "--mask":
		tr.moduleParameter(w, next, words)
		return false, false
	case "--dst-type", "--src-type":
		if v := next(); v != "LOCAL" {
			tr.t.Fatalf("tracer: addrtype %s not supported", v)
		}
		if w == "--src-type" {
			return tr.IsLocal(p.Src), true
		}
		return tr.IsLocal(p.Dst), true
	case "--mark":
		v, m, _ := strings.Cut(next(), "/")
		val, _ := strconv.ParseUint(v, 0, 32)
		mask, _ := strconv.ParseUint(m, 0, 32)
		return p.Mark&uint32(mask) == uint32(val), true
	case "--ctstate":
		for _, s := range strings.Split(next(), ",") {
			ok = ok || s == "NEW" || s == "DNAT" && p.Translated()
		}
		return ok, true
	case "--match-set":
		name, flags := next(), next()
		if tr.MatchSet == nil {
			tr.t.Fatalf("tracer: no ipsets for --match-set %s", name)
		}
		return tr.MatchSet(name, flags, p), true
	case "--rcheck":
		return false, true // no affinity entry exists for a first packet
	}
	tr.t.Fatalf("tracer: %q not understood in %v", w, words)
	return false, false
}

// moduleParameter reads an option that configures a module without
// matching, refusing the values the tracer cannot follow.
func (tr *Tracer) moduleParameter(w string, next func() string, words []string) {
	switch w {
	case "-m", "--comment", "--name", "--seconds":
		next()
	case "--mode":
		if next() != "random" {
			tr.t.Fatalf("tracer: statistic mode not supported: %v", words)
		}
	case "--mask":
		if m := next(); m != "255.255.255.255" && m != "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" {
			tr.t.Fatalf("tracer: recent --mask %s not supported", m)
		}
	}
}

// addrMatches evaluates "-s/-d spec": an address, a CIDR, or an address
// with a dotted (possibly non-contiguous) mask.
func (tr *Tracer) addrMatches(spec string, a netip.Addr) bool {
	val, mask, ok := strings.Cut(spec, "/")
	if !ok || !strings.ContainsAny(mask, ".:") {
		return tr.prefix(spec).Contains(a)
	}
	v, err1 := netip.ParseAddr(val)
	m, err2 := netip.ParseAddr(mask)
	if err1 != nil || err2 != nil || v.BitLen() != m.BitLen() {
		tr.t.Fatalf("tracer: bad address/mask %q", spec)
	}
	if a.BitLen() != v.BitLen() {
		return false
	}
	av, vv, mv := a.As16(), v.As16(), m.As16()
	for i := range av {
		if av[i]&mv[i] != vv[i]&mv[i] {
			return false
		}
	}
	return true
}

func (tr *Tracer) prefix(s string) netip.Prefix {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			tr.t.Fatalf("tracer: bad prefix %q", s)
		}
		return p
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		tr.t.Fatalf("tracer: bad address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen())
}
