package ipvs

import (
	"fmt"
	"github.com/kproxy/kproxy/internal/xtables"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/flowtest"
	"github.com/kproxy/kproxy/proxier"
)

// tracer follows a connection's first packet through a desired State as
// the kernel would: nat PREROUTING (OUTPUT for the node's own traffic),
// filter INPUT, IPVS (LOCAL_IN, or LOCAL_OUT before filter OUTPUT for the
// node's traffic), filter OUTPUT, nat POSTROUTING. Every real server is
// followed, so a trace returns every possible outcome. A match or target
// it does not know fails the test: it cannot silently skip a rule.
type tracer struct {
	t      testing.TB
	s      *State
	fam    proxier.Family
	chains map[string]map[string][][]string // table → chain → rules (words after "-A chain")
	local  map[netip.Addr]bool              // the node's addresses (interfaces and kube-ipvs0)
}

type tpkt struct {
	src, dst netip.Addr
	dport    int
	proto    string // "tcp", "udp"
	mark     uint32
	in       string // incoming interface: "veth0" for a local pod, none for the node
}

func newTracer(t testing.TB, s *State, fam proxier.Family, nodeAddrs []netip.Addr) *tracer {
	tr := &tracer{t: t, s: s, fam: fam, chains: map[string]map[string][][]string{}, local: maps.Clone(s.Addrs)}
	for _, a := range nodeAddrs {
		tr.local[a] = true
	}
	table := ""
	for _, line := range strings.Split(s.Rules, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			tr.chains[table] = map[string][][]string{}
		case strings.HasPrefix(line, "-A "):
			w := splitWords(t, line)
			tr.chains[table][w[1]] = append(tr.chains[table][w[1]], w[2:])
		case line == "", line == "COMMIT", strings.HasPrefix(line, ":"):
		default:
			t.Fatalf("tracer: unexpected rule line %q", line)
		}
	}
	// The applier inserts each jump at the top of its built-in chain: the
	// last one of the list comes first.
	for _, j := range jumps {
		tr.chains[j.table][j.chain] = append([][]string{splitWords(t, j.rule())}, tr.chains[j.table][j.chain]...)
	}
	return tr
}

// splitWords splits a rule into words; "double quotes" group.
func splitWords(t testing.TB, s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				t.Fatalf("tracer: unbalanced quote in %q", s)
			}
			out, s = append(out, s[1:end+1]), s[end+2:]
			continue
		}
		w, rest, _ := strings.Cut(s, " ")
		out, s = append(out, w), rest
	}
	return out
}

// trace returns every outcome of one packet.
func (tr *tracer) trace(pk flowtest.Packet) []flowtest.Outcome {
	p := tpkt{src: pk.Src, dst: pk.Dst, dport: pk.DstPort, proto: strings.ToLower(string(pk.Protocol))}
	fromNode := pk.Source == flowtest.FromNode
	natHook := "PREROUTING"
	switch pk.Source {
	case flowtest.FromNode:
		natHook = "OUTPUT"
	case flowtest.FromLocalPod:
		p.in = "veth0"
	default:
		p.in = "eth0"
	}
	p, v := tr.run("nat", natHook, p)
	if v != "" && v != "RETURN" {
		tr.t.Fatalf("tracer: nat %s ended in %s", natHook, v)
	}
	if !fromNode {
		if !tr.local[p.dst] {
			return []flowtest.Outcome{{Verdict: "not proxied (forwarded)"}}
		}
		if out, ok := tr.filter("INPUT", p); !ok {
			return out
		}
	}
	vs := tr.s.VirtualServers[VSKey{Protocol(strings.ToUpper(p.proto)), p.dst, uint16(p.dport)}]
	if vs == nil {
		if fromNode {
			if out, ok := tr.filter("OUTPUT", p); !ok {
				return out
			}
		}
		return []flowtest.Outcome{{Verdict: "not proxied (delivered to the node)"}}
	}
	var outs []flowtest.Outcome
	for _, d := range slices.SortedFunc(maps.Keys(vs.Dests), netip.AddrPort.Compare) {
		if vs.Dests[d].Weight == 0 {
			continue
		}
		q := p
		q.dst, q.dport, q.in = d.Addr(), int(d.Port()), ""
		// IPVS sends the rewritten packet through LOCAL_OUT (filter
		// OUTPUT) and POSTROUTING.
		if out, ok := tr.filter("OUTPUT", q); !ok {
			outs = append(outs, out...)
			continue
		}
		_, v := tr.run("nat", "POSTROUTING", q)
		outs = append(outs, flowtest.Outcome{Verdict: flowtest.Forward, Endpoint: d.String(), Masquerade: v == "MASQUERADE"})
	}
	if len(outs) == 0 {
		// IPVS answers ICMP port unreachable when no real server is left.
		return []flowtest.Outcome{{Verdict: flowtest.Reject}}
	}
	return outs
}

// filter runs a filter hook; ok is false when the packet ended there.
func (tr *tracer) filter(hook string, p tpkt) ([]flowtest.Outcome, bool) {
	switch _, v := tr.run("filter", hook, p); v {
	case "DROP":
		return []flowtest.Outcome{{Verdict: flowtest.Drop}}, false
	case "REJECT":
		return []flowtest.Outcome{{Verdict: flowtest.Reject}}, false
	}
	return nil, true
}

// run evaluates a chain; the verdict is "" when it fell through.
func (tr *tracer) run(table, chain string, p tpkt) (tpkt, string) {
	rules, ok := tr.chains[table][chain]
	if !ok && !xtables.IsBuiltinChain(table, chain) {
		tr.t.Fatalf("tracer: jump to unknown chain %s/%s", table, chain)
	}
	for _, r := range rules {
		target, args, ok := tr.matches(r, p)
		if !ok {
			continue
		}
		switch target {
		case "ACCEPT", "DROP", "REJECT", "MASQUERADE":
			return p, target
		case "RETURN":
			return p, ""
		case "MARK":
			val, err := strconv.ParseUint(args[1], 0, 32)
			if err != nil || len(args) != 2 {
				tr.t.Fatalf("tracer: bad MARK %v", args)
			}
			switch args[0] {
			case "--or-mark":
				p.mark |= uint32(val)
			case "--xor-mark":
				p.mark ^= uint32(val)
			default:
				tr.t.Fatalf("tracer: bad MARK %v", args)
			}
		default:
			var v string
			if p, v = tr.run(table, target, p); v != "" {
				return p, v
			}
		}
	}
	return p, ""
}

// matches evaluates a rule's matches and returns its target and the
// target's options.
func (tr *tracer) matches(r []string, p tpkt) (target string, args []string, ok bool) {
	ok = true
	for i := 0; i < len(r); i++ {
		neg := r[i] == "!"
		if neg {
			i++
		}
		var m bool
		switch w := r[i]; w {
		case "-j":
			return r[i+1], r[i+2:], ok
		case "-m":
			if r[i+1] == "comment" {
				i += 3
				continue
			}
			if r[i+2] == "!" {
				neg = true
				r = slices.Delete(slices.Clone(r), i+2, i+3)
			}
			if r[i+1] == "set" && r[i+2] == "--match-set" {
				m = tr.inSet(r[i+3], r[i+4], p)
				i += 4
				break
			}
			m = tr.module(r[i+1], r[i+2], r[i+3], p)
			i += 3
		case "-s":
			m = netip.MustParsePrefix(r[i+1]).Contains(p.src)
			i++
		case "-i":
			prefix, wild := strings.CutSuffix(r[i+1], "+")
			m = p.in != "" && (p.in == r[i+1] || wild && strings.HasPrefix(p.in, prefix))
			i++
		default:
			tr.t.Fatalf("tracer: unknown word %q in %v", w, r)
		}
		if m == neg {
			ok = false
		}
	}
	tr.t.Fatalf("tracer: rule without target: %v", r)
	return
}

func (tr *tracer) module(mod, opt, val string, p tpkt) bool {
	switch {
	case mod == "conntrack" && opt == "--ctstate":
		return slices.Contains(strings.Split(val, ","), "NEW")
	case mod == "mark" && opt == "--mark":
		v, m, _ := strings.Cut(val, "/")
		vv, _ := strconv.ParseUint(v, 0, 32)
		mm, _ := strconv.ParseUint(m, 0, 32)
		return p.mark&uint32(mm) == uint32(vv)
	case mod == "addrtype" && opt == "--src-type" && val == "LOCAL":
		return tr.local[p.src] || p.src.IsLoopback()
	}
	tr.t.Fatalf("tracer: unknown match -m %s %s %s", mod, opt, val)
	return false
}

// inSet reports whether the packet matches set name with the given flags.
func (tr *tracer) inSet(name, flags string, p tpkt) bool {
	def, ok := ownedSets(tr.fam)[name]
	if !ok {
		tr.t.Fatalf("tracer: unknown set %s", name)
	}
	entries := tr.s.Sets[name]
	key := entryIPPort(p.dst, Protocol(strings.ToUpper(p.proto)), uint16(p.dport))
	switch def.kind + " " + flags {
	case "hash:ip dst":
		return entries[p.dst.String()]
	case "hash:ip,port dst,dst":
		return entries[key]
	case "hash:ip,port,ip dst,dst,src":
		return entries[key+","+p.src.String()]
	case "hash:ip,port,net dst,dst,src":
		for e := range entries {
			pe, err := ParseEntry(e)
			if err == nil && pe.String("hash:ip,port") == key && pe.IP2.Contains(p.src) {
				return true
			}
		}
		return false
	}
	tr.t.Fatalf("tracer: set %s (%s) matched with %s", name, def.kind, flags)
	return false
}

func (p tpkt) String() string { return fmt.Sprintf("%s -> %s:%d/%s", p.src, p.dst, p.dport, p.proto) }
