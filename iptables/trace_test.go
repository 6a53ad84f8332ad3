package iptables

import (
	"fmt"
	"github.com/kproxy/kproxy/internal/xtables"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
)

// tracer follows a connection's first packet through rendered
// iptables-restore text plus the jump rules, as the kernel would: nat
// PREROUTING (or OUTPUT for the node's own traffic), filter INPUT/FORWARD
// (or OUTPUT), nat POSTROUTING. Random choices are followed both ways, so
// a trace returns every possible outcome. Any match or target it does not
// know fails the test, so the tracer cannot silently ignore a rule.
type tracer struct {
	t      testing.TB
	chains map[string]map[string][][]string // table → chain → rules (words after "-A chain")
	local  []netip.Prefix                   // the node's own addresses
	// podIface is the interface local pods' packets come in on (the
	// node's own have none, everyone else's come in on eth0).
	podIface string
}

type tpkt struct {
	src, dst netip.Addr
	dport    int
	proto    string
	mark     uint32
	dnat     string
	in       string // incoming interface
}

type tres struct {
	p       tpkt
	verdict string // "" (fell through), ACCEPT, DROP, REJECT, RETURN, DNAT, MASQUERADE
}

func newTracer(t testing.TB, restore string, nodeIP string) *tracer {
	tables, err := xtables.ParseRestore(restore)
	if err != nil {
		t.Fatalf("parse rendered rules: %v", err)
	}
	tr := &tracer{t: t, chains: map[string]map[string][][]string{},
		local: []netip.Prefix{netip.MustParsePrefix(nodeIP + "/32"), netip.MustParsePrefix("127.0.0.0/8")}, podIface: "veth0"}
	for _, tb := range tables {
		m := map[string][][]string{}
		tr.chains[tb.Name] = m
		for _, c := range tb.Chains {
			m[c] = nil
		}
		for _, l := range tb.Lines {
			if len(l.Words) == 1 && l.Words[0] == "-S" {
				continue // a listing, see listAllMin
			}
			if l.Words[0] != "-A" {
				t.Fatalf("line %d: tracer only understands -A: %v", l.LineNo, l.Words)
			}
			m[l.Words[1]] = append(m[l.Words[1]], l.Words[2:])
		}
	}
	// Built-in chains hold the jump rules; each was inserted at the top,
	// so the last one ensured comes first.
	for _, j := range append(append([]jumpRule{}, jumpRules...), kubeletJumpRules...) {
		if tr.chains[j.table] == nil {
			tr.chains[j.table] = map[string][][]string{}
		}
		if _, ok := tr.chains[j.table][j.to]; !ok {
			continue // chain not rendered (KUBE-FIREWALL without localhost NodePorts)
		}
		tr.chains[j.table][j.from] = append([][]string{j.args()}, tr.chains[j.table][j.from]...)
	}
	return tr
}

func (tr *tracer) isLocal(a netip.Addr) bool {
	for _, p := range tr.local {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trace returns every outcome of one packet.
func (tr *tracer) trace(pk flowtest.Packet) []flowtest.Outcome {
	p := tpkt{src: pk.Src, dst: pk.Dst, dport: pk.DstPort, proto: strings.ToLower(string(pk.Protocol))}
	natHook, filterHook := "PREROUTING", ""
	switch pk.Source {
	case flowtest.FromNode:
		natHook, filterHook = "OUTPUT", "OUTPUT"
	case flowtest.FromLocalPod:
		p.in = tr.podIface
	default:
		p.in = "eth0"
	}
	var outs []flowtest.Outcome
	for _, a := range tr.run(tableNAT, natHook, 0, p) {
		hook := filterHook
		if hook == "" {
			hook = "FORWARD"
			if tr.isLocal(a.p.dst) {
				hook = "INPUT"
			}
		}
		for _, b := range tr.run(tableFilter, hook, 0, a.p) {
			switch b.verdict {
			case "DROP":
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Drop})
				continue
			case "REJECT":
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Reject})
				continue
			}
			for _, c := range tr.run(tableNAT, "POSTROUTING", 0, b.p) {
				if c.p.dnat == "" {
					outs = append(outs, flowtest.Outcome{Verdict: "not proxied"})
					continue
				}
				outs = append(outs, flowtest.Outcome{Verdict: flowtest.Forward, Endpoint: c.p.dnat, Masquerade: c.verdict == "MASQUERADE"})
			}
		}
	}
	return outs
}

// run evaluates chain from rule i on.
func (tr *tracer) run(table, chain string, i int, p tpkt) []tres {
	rules := tr.chains[table][chain]
	for ; i < len(rules); i++ {
		matched, random, target, targs := tr.match(rules[i], p)
		if !matched {
			continue
		}
		var out []tres
		for _, r := range tr.target(table, target, targs, p) {
			if r.verdict == "" {
				out = append(out, tr.run(table, chain, i+1, r.p)...)
			} else {
				out = append(out, r)
			}
		}
		if random {
			out = append(out, tr.run(table, chain, i+1, p)...)
		}
		return out
	}
	return []tres{{p: p}}
}

// target applies a rule's target; verdict "" means continue after the rule.
func (tr *tracer) target(table, target string, args []string, p tpkt) []tres {
	switch target {
	case "":
		return []tres{{p: p}}
	case "ACCEPT", "DROP":
		return []tres{{p: p, verdict: target}}
	case "REJECT":
		if len(args) != 2 || args[0] != "--reject-with" || !strings.HasSuffix(args[1], "-port-unreachable") {
			tr.t.Fatalf("unexpected REJECT options %v", args)
		}
		return []tres{{p: p, verdict: target}}
	case "RETURN":
		return []tres{{p: p, verdict: "RETURN"}}
	case "MASQUERADE":
		return []tres{{p: p, verdict: "MASQUERADE"}}
	case "MARK":
		switch args[0] {
		case "--set-xmark": // mark = (mark & ^mask) ^ value
			val, mask, ok := strings.Cut(args[1], "/")
			if !ok {
				tr.t.Fatalf("bad --set-xmark %v", args)
			}
			vv, err1 := strconv.ParseUint(val, 0, 32)
			mm, err2 := strconv.ParseUint(mask, 0, 32)
			if err1 != nil || err2 != nil {
				tr.t.Fatalf("bad --set-xmark %v", args)
			}
			p.mark = (p.mark &^ uint32(mm)) ^ uint32(vv)
		default:
			tr.t.Fatalf("unknown MARK option %v", args)
		}
		return []tres{{p: p}}
	case "DNAT":
		if args[0] != "--to-destination" {
			tr.t.Fatalf("unknown DNAT option %v", args)
		}
		ap := netip.MustParseAddrPort(args[1])
		p.dnat, p.dst, p.dport = args[1], ap.Addr(), int(ap.Port())
		return []tres{{p: p, verdict: "DNAT"}}
	}
	if _, ok := tr.chains[table][target]; !ok {
		tr.t.Fatalf("jump to undeclared chain %s/%s", table, target)
	}
	var out []tres
	for _, r := range tr.run(table, target, 0, p) {
		if r.verdict == "RETURN" {
			r.verdict = ""
		}
		out = append(out, r)
	}
	return out
}

// match evaluates a rule's matches; it returns the target and its options.
func (tr *tracer) match(words []string, p tpkt) (matched, random bool, target string, targs []string) {
	matched = true
	neg := false
	check := func(ok bool) {
		if ok == neg {
			matched = false
		}
		neg = false
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		next := func() string {
			i++
			if i >= len(words) {
				tr.t.Fatalf("option %s without value in %v", w, words)
			}
			return words[i]
		}
		switch w {
		case "!":
			neg = true
		case "-m", "--comment", "--name", "--seconds":
			next()
		case "--mask":
			if m := next(); m != "255.255.255.255" && m != "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" {
				tr.t.Fatalf("recent --mask %s not supported", m)
			}
		case "--reap", "--rsource":
		case "-p":
			check(next() == p.proto)
		case "-s":
			check(addrMatches(tr.t, next(), p.src))
		case "-d":
			check(addrMatches(tr.t, next(), p.dst))
		case "-i":
			name := next()
			prefix, wild := strings.CutSuffix(name, "+")
			check(p.in != "" && (p.in == name || wild && strings.HasPrefix(p.in, prefix)))
		case "--dport":
			check(next() == strconv.Itoa(p.dport))
		case "--dst-type", "--src-type":
			if v := next(); v != "LOCAL" {
				tr.t.Fatalf("addrtype %s not supported", v)
			}
			a := p.dst
			if w == "--src-type" {
				a = p.src
			}
			check(tr.isLocal(a))
		case "--mark":
			v, m, _ := strings.Cut(next(), "/")
			val, _ := strconv.ParseUint(v, 0, 32)
			mask, _ := strconv.ParseUint(m, 0, 32)
			check(p.mark&uint32(mask) == uint32(val))
		case "--ctstate":
			states := strings.Split(next(), ",")
			ok := false
			for _, s := range states {
				ok = ok || s == "NEW" || (s == "DNAT" && p.dnat != "")
			}
			check(ok)
		case "--mode":
			if next() != "random" {
				tr.t.Fatalf("statistic mode not supported: %v", words)
			}
		case "--probability":
			next()
			random = true
		case "--rcheck":
			check(false) // no affinity entry exists for a first packet
		case "--set":
		case "-j":
			return matched, random && matched, next(), words[i+1:]
		default:
			tr.t.Fatalf("tracer does not understand %q in %v", w, words)
		}
	}
	return matched, random && matched, "", nil
}

// addrMatches evaluates "-s/-d spec": an address, a CIDR, or an address
// with a dotted (possibly non-contiguous) mask.
func addrMatches(t testing.TB, spec string, a netip.Addr) bool {
	val, mask, ok := strings.Cut(spec, "/")
	if !ok || !strings.ContainsAny(mask, ".:") {
		return prefixOf(t, spec).Contains(a)
	}
	v, err1 := netip.ParseAddr(val)
	m, err2 := netip.ParseAddr(mask)
	if err1 != nil || err2 != nil || v.BitLen() != m.BitLen() {
		t.Fatalf("bad address/mask %q", spec)
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

func prefixOf(t testing.TB, s string) netip.Prefix {
	if strings.Contains(s, "/") {
		return netip.MustParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("bad address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen())
}

var _ = fmt.Sprint
