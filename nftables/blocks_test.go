package nftables

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/kproxy/kproxy/internal/flowtest"
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
// flush, a delete or an element ends the run; runs shorter than minRun
// stay as they are. No block names a chain added before (by a command,
// an earlier block or earlier in the same block): the rules of such a
// chain follow the block as lines, in their order.
func TestGroupChainRules(t *testing.T) {
	in := strings.Join([]string{
		"add table ip kube-proxy { comment \"rules for kube-proxy\" ; }",
		"add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }",
		"add rule ip kube-proxy nat-prerouting jump services",
		"add chain ip kube-proxy service-A-default/a/tcp/p",
		"add rule ip kube-proxy service-A-default/a/tcp/p meta l4proto tcp dnat to 10.1.0.1:80",
		"add chain ip kube-proxy service-B-default/b/tcp/p",
		"add rule ip kube-proxy service-A-default/a/tcp/p counter",
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
		"\tchain service-A-default/a/tcp/p {",
		"\t\tmeta l4proto tcp dnat to 10.1.0.1:80",
		"\t}",
		"\tchain service-B-default/b/tcp/p {",
		"\t}",
		"}",
		"add rule ip kube-proxy nat-prerouting jump services",
		"add rule ip kube-proxy service-A-default/a/tcp/p counter",
		"flush chain ip kube-proxy service-B-default/b/tcp/p",
		"add rule ip kube-proxy service-B-default/b/tcp/p ip saddr 10.1.0.2 jump mark-for-masquerade",
		"add rule ip kube-proxy service-B-default/b/tcp/p meta l4proto tcp dnat to 10.1.0.2:80",
		"table ip6 kube-proxy {",
		"\tchain c {",
		"\t\tct state new counter",
		"\t}",
		"}",
		"add element ip kube-proxy cluster-ips { 10.0.0.1 }",
		"add rule ip kube-proxy service-A-default/a/tcp/p counter",
		"",
	}, "\n")
	got := groupChainRules(in, 1)
	if got != want {
		t.Errorf("groupChainRules:\n%s", lineDiff(got, want))
	}
	if short := groupChainRules(in, 6); short != in+"\n" {
		t.Errorf("runs shorter than minRun were rewritten:\n%s", lineDiff(short, in+"\n"))
	}
	// At minRun 5 only the first run (5 lines) becomes a block.
	first := strings.Join(strings.Split(want, "\n")[2:11], "\n")
	if five := groupChainRules(in, 5); !strings.Contains(five, first) || strings.Count(five, "\ntable ") != 1 {
		t.Errorf("minRun 5: want only the first run as a block:\n%s", five)
	}
	if zero := groupChainRules(in, 0); zero != got {
		t.Errorf("minRun 0 differs from minRun 1:\n%s", lineDiff(zero, got))
	}
	lines := strings.Split(got, "\n")
	for n, chain := range map[int]string{2: "", 5: "service-A-default/a/tcp/p", 10: "", 13: "", 17: "c"} {
		if c := blockChain(lines, n); c != chain {
			t.Errorf("blockChain(line %d) = %q, want %q", n, c, chain)
		}
	}
}

// TestChainAddedAfterDeleteGoesInABlock: a chain the text deleted is new
// when added again, so it may open a block.
func TestChainAddedAfterDeleteGoesInABlock(t *testing.T) {
	in := "add chain ip kube-proxy c\ndelete chain ip kube-proxy c\nadd chain ip kube-proxy c\nadd rule ip kube-proxy c counter"
	want := "table ip kube-proxy {\n\tchain c {\n\t}\n}\ndelete chain ip kube-proxy c\n" +
		"table ip kube-proxy {\n\tchain c {\n\t\tcounter\n\t}\n}\n"
	if got := groupChainRules(in, 1); got != want {
		t.Errorf("groupChainRules:\n%s", lineDiff(got, want))
	}
}

// TestNoChainAddedTwice: a first sync adds each chain once, in a command
// or a block, never both: nft would send the second add, which the
// kernel takes as an update (see writeRun). Flow scenarios and many
// Services, table blocks for runs of any length or only long ones.
func TestNoChainAddedTwice(t *testing.T) {
	opts, err := flowOptions().normalized()
	if err != nil {
		t.Fatal(err)
	}
	fam, _ := nftFamily(opts.Family)
	for _, sc := range append(flowtest.Scenarios(), manyServices(1200)) {
		for _, minRun := range []int{1, minBlockLines} {
			snap := sc.Snapshot()
			w := newTextWriter(knftables.NewFake(fam, tableName), fam, minRun)
			r := newRenderer(opts, w, snap)
			r.noTable = true
			r.renderFull(snap, true)
			text, err := w.text()
			if err != nil {
				t.Fatal(err)
			}
			added := map[string]int{}
			for l := range strings.Lines(text) {
				l = strings.TrimSuffix(l, "\n")
				if k, ok := chainCommand(l, "add chain "); ok {
					added[k.chain]++
				} else if c, ok := parseChainLine(l); ok && c.rule == "" {
					added[c.chain]++
				} else if name, ok := strings.CutPrefix(l, "\tchain "); ok {
					added[strings.TrimSuffix(name, " {")]++
				}
			}
			if len(added) < 10 {
				t.Fatalf("%s, min run %d: only %d chains added:\n%s", sc.Name, minRun, len(added), text)
			}
			for chain, n := range added {
				if n > 1 {
					t.Errorf("%s, min run %d: chain %s added %d times", sc.Name, minRun, chain, n)
				}
			}
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
