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

// write writes the line (as parsed, or as knftables would write it).
func (l chainLine) write(out *strings.Builder) {
	if l.rule == "" {
		out.WriteString("add chain ")
	} else {
		out.WriteString("add rule ")
	}
	out.WriteString(l.table)
	out.WriteByte(' ')
	out.WriteString(l.chain)
	if l.rule != "" {
		out.WriteByte(' ')
		out.WriteString(l.rule)
	}
	out.WriteByte('\n')
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
	table, fields, ok := chainFields(rest)
	if !ok {
		return chainLine{}, false
	}
	switch {
	case !isRule && len(fields) == 3:
		return chainLine{table: table, chain: fields[2]}, true
	case isRule && len(fields) == 4 && blockable(fields[3]):
		return chainLine{table: table, chain: fields[2], rule: fields[3]}, true
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

// chainCommand reads the chain of a `VERB chain FAMILY TABLE NAME ...`
// line (ok false for any other line), verb as "add chain ".
func chainCommand(line, verb string) (chainKey, bool) {
	rest, ok := strings.CutPrefix(line, verb)
	if !ok {
		return chainKey{}, false
	}
	table, fields, ok := chainFields(rest)
	if !ok {
		return chainKey{}, false
	}
	return chainKey{table: table, chain: fields[2]}, true
}

// chainFields splits "FAMILY TABLE NAME[ REST]" into its three or four
// fields, and the table ("FAMILY TABLE", a part of s); ok is false
// without a name.
func chainFields(s string) (table string, fields []string, ok bool) {
	fields = strings.SplitN(s, " ", 4)
	if len(fields) < 3 || fields[2] == "" {
		return "", nil, false
	}
	return s[:len(fields[0])+1+len(fields[1])], fields, true
}
