package iptables

import (
	"fmt"
	"strings"
)

// restoreTable is one "*table ... COMMIT" block of iptables-restore input.
type restoreTable struct {
	name   string
	chains []string   // declared chains, in order
	lines  []ruleLine // -A, -I, -X, -F, -N lines in order
}

// ruleLine is one command line, split into words (quotes removed).
type ruleLine struct {
	lineNo int
	words  []string
	raw    string // the line as written
}

// parseRestore splits iptables-restore input into tables. It understands
// what kproxy writes and what iptables-save prints.
func parseRestore(data string) ([]restoreTable, error) {
	var tables []restoreTable
	var cur *restoreTable
	for i, raw := range strings.Split(data, "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			if cur != nil {
				return nil, fmt.Errorf("line %d: table %s started before COMMIT of %s", n, line, cur.name)
			}
			tables = append(tables, restoreTable{name: line[1:]})
			cur = &tables[len(tables)-1]
		case line == "COMMIT":
			if cur == nil {
				return nil, fmt.Errorf("line %d: COMMIT outside a table", n)
			}
			cur = nil
		case cur == nil:
			return nil, fmt.Errorf("line %d: %q outside a table", n, line)
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) == 0 {
				return nil, fmt.Errorf("line %d: empty chain declaration", n)
			}
			cur.chains = append(cur.chains, f[0])
		default:
			words, err := splitWords(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			cur.lines = append(cur.lines, ruleLine{lineNo: n, words: words, raw: line})
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("table %s has no COMMIT", cur.name)
	}
	return tables, nil
}

// splitWords splits a rule on spaces, keeping "quoted strings" together.
func splitWords(line string) ([]string, error) {
	var words []string
	var b strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				words = append(words, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteRune(r)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if have {
		words = append(words, b.String())
	}
	return words, nil
}
