package nftables

import (
	"strings"
)

// chainLine is an `add chain FAMILY TABLE NAME` line without a
// specification, or an `add rule FAMILY TABLE NAME RULE` line, as
// knftables writes them.
type chainLine struct {
	line  string // as written
	table string // "FAMILY TABLE"
	chain string
	rule  string // "" for a chain
}

// parseChainLine reads a line that can go into a table block (ok false for
// any other: base chains, rules a block would read differently, flushes,
// deletes, sets, maps, elements).
func parseChainLine(line string) (chainLine, bool) {
	rest, isRule := strings.CutPrefix(line, "add rule ")
	if !isRule {
		var isChain bool
		if rest, isChain = strings.CutPrefix(line, "add chain "); !isChain {
			return chainLine{}, false
		}
	}
	fields := strings.SplitN(rest, " ", 4)
	switch {
	case !isRule && len(fields) == 3 && fields[2] != "":
		return chainLine{line: line, table: fields[0] + " " + fields[1], chain: fields[2]}, true
	case isRule && len(fields) == 4 && fields[2] != "" && blockable(fields[3]):
		return chainLine{line: line, table: fields[0] + " " + fields[1], chain: fields[2], rule: fields[3]}, true
	}
	return chainLine{}, false
}

// blockable tells a rule that reads the same inside a chain block: not
// empty, not placed by index or handle (knftables writes " index N" or
// " handle N" after the chain, which a block cannot express), and without
// a ";" (which ends a statement in a block).
func blockable(rule string) bool {
	return rule != "" && !strings.HasPrefix(rule, "index ") && !strings.HasPrefix(rule, "handle ") &&
		!strings.Contains(rule, ";")
}

// minBlockLines is the shortest run of chain and rule adds written as a
// table block: nft spends a fixed time on each table block, far more than
// on one rule line, so the short runs of the static part and of partial
// syncs stay one command per line.
const minBlockLines = 1000

// groupChainRules rewrites `nft -f` input so that runs of at least minRun
// chain and rule adds are written as `nft list table` prints a table: one
// table block, one chain block per chain, one rule per line. nft parses
// that form faster than a command per rule. The end state is the same:
// everything in a block is an add (a chain block adds the chain if it is
// missing and appends its rules; nft adds a block's chains before its
// rules). Any other line ends the run, so flushes and deletes keep their
// place.
func groupChainRules(text string, minRun int) string {
	var out strings.Builder
	out.Grow(len(text))
	var run []chainLine
	emitRun := func() {
		switch {
		case len(run) == 0:
		case len(run) < minRun:
			for _, l := range run {
				out.WriteString(l.line)
				out.WriteByte('\n')
			}
		default:
			writeBlock(&out, run)
		}
		run = run[:0]
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		l, ok := parseChainLine(line)
		if !ok || (len(run) > 0 && l.table != run[0].table) {
			emitRun()
		}
		if !ok {
			out.WriteString(line)
			out.WriteByte('\n')
			continue
		}
		run = append(run, l)
	}
	emitRun()
	return out.String()
}

// writeBlock writes lines, all of one table, as a table block.
func writeBlock(out *strings.Builder, lines []chainLine) {
	out.WriteString("table " + lines[0].table + " {\n")
	chain := ""
	for _, l := range lines {
		if l.chain != chain || l.rule == "" {
			if chain != "" {
				out.WriteString("\t}\n")
			}
			chain = l.chain
			out.WriteString("\tchain " + chain + " {\n")
		}
		if l.rule != "" {
			out.WriteString("\t\t")
			out.WriteString(l.rule)
			out.WriteByte('\n')
		}
	}
	out.WriteString("\t}\n}\n")
}

// blockChain is the chain whose block holds line n (1-based) of text as
// groupChainRules writes it, or "" if the line is not a rule in a block.
func blockChain(lines []string, n int) string {
	if n < 1 || n > len(lines) || !strings.HasPrefix(lines[n-1], "\t\t") {
		return ""
	}
	for i := n - 2; i >= 0; i-- {
		if name, ok := strings.CutPrefix(lines[i], "\tchain "); ok {
			return strings.TrimSuffix(name, " {")
		}
		if !strings.HasPrefix(lines[i], "\t\t") {
			return ""
		}
	}
	return ""
}
