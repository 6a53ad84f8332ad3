package nftables

import (
	"strings"
)

// chainLine is an `add chain FAMILY TABLE NAME` line without a
// specification, or an `add rule FAMILY TABLE NAME RULE` line, as
// knftables writes them.
type chainLine struct {
	table string // "FAMILY TABLE"
	chain string
	rule  string // "" for a chain
}

// parseChainLine reads a line that can go into a table block (ok false for
// any other: base chains, rules placed by index or handle, flushes,
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
		return chainLine{table: fields[0] + " " + fields[1], chain: fields[2]}, true
	case isRule && len(fields) == 4 && fields[2] != "" && fields[3] != "" && !positioned(fields[3]):
		return chainLine{table: fields[0] + " " + fields[1], chain: fields[2], rule: fields[3]}, true
	}
	return chainLine{}, false
}

// minBlockLines is the shortest run of chain and rule adds written as a
// table block. nft spends about as much on each table block as on a few
// hundred rule lines (whatever the block holds), so short runs, such as
// those between the flushes of a restart, stay one command per line.
const minBlockLines = 1000

// positioned tells a rule placed by index or handle (knftables writes
// " index N" or " handle N" after the chain), which a chain block cannot
// express.
func positioned(rule string) bool {
	return strings.HasPrefix(rule, "index ") || strings.HasPrefix(rule, "handle ")
}

// groupChainRules rewrites `nft -f` input so that runs of at least minRun
// chain and rule adds are written as `nft list table` prints a table: one table
// block, one chain block per chain, one rule per line. nft parses that
// form faster than a command per rule, and adds the same chains and rules
// in the same order: a chain block adds the chain if it is missing and
// appends its rules. Any other line ends the run, so flushes and deletes
// keep their place.
func groupChainRules(text string, minRun int) string {
	var out strings.Builder
	out.Grow(len(text))
	var run []string
	var parsed []chainLine
	flush := func() {
		if len(run) < minRun {
			for _, l := range run {
				out.WriteString(l + "\n")
			}
		} else {
			writeBlocks(&out, parsed)
		}
		run, parsed = run[:0], parsed[:0]
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		l, ok := parseChainLine(line)
		if !ok || (len(parsed) > 0 && l.table != parsed[0].table) {
			flush()
		}
		if !ok {
			out.WriteString(line + "\n")
			continue
		}
		run, parsed = append(run, line), append(parsed, l)
	}
	flush()
	return out.String()
}

// writeBlocks writes lines, all of one table, as a table block.
func writeBlocks(out *strings.Builder, lines []chainLine) {
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
			out.WriteString("\t\t" + l.rule + "\n")
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
