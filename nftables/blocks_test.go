package nftables

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// chainRules are the rules of the chains whose name satisfies want in
// text as compactText writes it (rule lines and chain blocks), in order.
func chainRules(text string, want func(chain string) bool) []string {
	var rules []string
	chain := ""
	for l := range strings.Lines(text) {
		l = strings.TrimSuffix(l, "\n")
		if name, ok := strings.CutPrefix(l, "\tchain "); ok {
			chain = strings.TrimSuffix(name, " {")
		} else if rule, ok := strings.CutPrefix(l, "\t\t"); ok && want(chain) {
			rules = append(rules, rule)
		} else if c, ok := parseChainLine(l); ok && c.rule != "" && want(c.chain) {
			rules = append(rules, c.rule)
		}
	}
	return rules
}

// TestGroupChainRules: runs of bare chain adds and rule adds become table
// and chain blocks in the same order; a chain with a specification, a
// flush, a delete or an element ends the run; a chain added again, or a
// rule for another chain, opens a new chain block; runs shorter than
// minRun stay as they are.
func TestGroupChainRules(t *testing.T) {
	in := strings.Join([]string{
		"add table ip kube-proxy { comment \"rules for kube-proxy\" ; }",
		"add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
		"add rule ip kube-proxy nat-prerouting jump services",
		"add chain ip kube-proxy service-A-default/a/tcp/p",
		"add rule ip kube-proxy service-A-default/a/tcp/p meta l4proto tcp dnat to 10.1.0.1:80",
		"add chain ip kube-proxy service-B-default/b/tcp/p",
		"flush chain ip kube-proxy service-B-default/b/tcp/p",
		"add rule ip kube-proxy service-B-default/b/tcp/p ip saddr 10.1.0.2 jump mark-for-masquerade",
		"add rule ip kube-proxy service-B-default/b/tcp/p meta l4proto tcp dnat to 10.1.0.2:80",
		"add rule ip6 kube-proxy c ct state new counter",
		"add element ip kube-proxy cluster-ips { 10.0.0.1 }",
		"add rule ip kube-proxy service-A-default/a/tcp/p counter",
	}, "\n")
	want := strings.Join([]string{
		"add table ip kube-proxy { comment \"rules for kube-proxy\" ; }",
		"add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
		"table ip kube-proxy {",
		"\tchain nat-prerouting {",
		"\t\tjump services",
		"\t}",
		"\tchain service-A-default/a/tcp/p {",
		"\t\tmeta l4proto tcp dnat to 10.1.0.1:80",
		"\t}",
		"\tchain service-B-default/b/tcp/p {",
		"\t}",
		"}",
		"flush chain ip kube-proxy service-B-default/b/tcp/p",
		"table ip kube-proxy {",
		"\tchain service-B-default/b/tcp/p {",
		"\t\tip saddr 10.1.0.2 jump mark-for-masquerade",
		"\t\tmeta l4proto tcp dnat to 10.1.0.2:80",
		"\t}",
		"}",
		"table ip6 kube-proxy {",
		"\tchain c {",
		"\t\tct state new counter",
		"\t}",
		"}",
		"add element ip kube-proxy cluster-ips { 10.0.0.1 }",
		"table ip kube-proxy {",
		"\tchain service-A-default/a/tcp/p {",
		"\t\tcounter",
		"\t}",
		"}",
		"",
	}, "\n")
	got := groupChainRules(in, 1)
	if got != want {
		t.Errorf("groupChainRules:\n%s", lineDiff(got, want))
	}
	if short := groupChainRules(in, 5); short != in+"\n" {
		t.Errorf("runs shorter than minRun were rewritten:\n%s", lineDiff(short, in+"\n"))
	}
	// At minRun 4 only the first run (4 lines) becomes a block.
	first := strings.Join(strings.Split(want, "\n")[2:12], "\n")
	if four := groupChainRules(in, 4); !strings.Contains(four, first) || strings.Count(four, "\ntable ") != 1 {
		t.Errorf("minRun 4: want only the first run as a block:\n%s", four)
	}
	if zero := groupChainRules(in, 0); zero != got {
		t.Errorf("minRun 0 differs from minRun 1:\n%s", lineDiff(zero, got))
	}
	lines := strings.Split(got, "\n")
	for n, chain := range map[int]string{2: "", 5: "nat-prerouting", 8: "service-A-default/a/tcp/p", 17: "service-B-default/b/tcp/p", 13: "", 28: "service-A-default/a/tcp/p"} {
		if c := blockChain(lines, n); c != chain {
			t.Errorf("blockChain(line %d) = %q, want %q", n, c, chain)
		}
	}
}

// TestParseChainLine: only bare chain adds and rule adds with a rule are
// taken apart.
func TestParseChainLine(t *testing.T) {
	for line, want := range map[string]*chainLine{
		"add chain ip kube-proxy a/b":                       {table: "ip kube-proxy", chain: "a/b"},
		"add rule ip6 kube-proxy a/b ct state new counter":  {table: "ip6 kube-proxy", chain: "a/b", rule: "ct state new counter"},
		"add chain ip kube-proxy x { type nat hook input ;": nil,
		"add rule ip kube-proxy a/b":                        nil,
		"add rule ip kube-proxy a/b index 0 counter":        nil,
		"add rule ip kube-proxy a/b handle 7 counter":       nil,
		"add rule ip kube-proxy a/b counter; drop":          nil,
		"add chain ip kube-proxy":                           nil,
		"insert rule ip kube-proxy a/b counter":             nil,
		"flush chain ip kube-proxy a/b":                     nil,
		"add element ip kube-proxy s { 1.2.3.4 }":           nil,
	} {
		got, ok := parseChainLine(line)
		if ok != (want != nil) || (ok && got != *want) {
			t.Errorf("parseChainLine(%q) = %+v, %v", line, got, ok)
		}
		if ok {
			var back strings.Builder
			got.write(&back)
			if back.String() != line+"\n" {
				t.Errorf("parseChainLine(%q) writes back as %q", line, back.String())
			}
		}
	}
}

// TestOffendingLinesInBlocks: a rule nft refuses inside a chain block is
// reported with its chain.
func TestOffendingLinesInBlocks(t *testing.T) {
	text := groupChainRules("add chain ip kube-proxy a/b\nadd rule ip kube-proxy a/b bogus\n", 1)
	err := errors.New("/dev/stdin:3:3-7: Error: syntax error")
	if got, want := offendingLines(err, text), []string{"3: chain a/b: bogus"}; !slices.Equal(got, want) {
		t.Errorf("offendingLines = %q, want %q (text %q)", got, want, text)
	}
}
