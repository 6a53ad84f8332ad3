package xtables

import (
	"fmt"
	"strings"
)

// RestoreTable is one "*table ... COMMIT" block of iptables-restore input.
type RestoreTable struct {
	Name   string
	Chains []string      // declared chains, in order
	Lines  []CommandLine // -A, -I, -D, -X, -F, -N, -S lines in order
}

// CommandLine is one command line, split into words (quotes removed).
type CommandLine struct {
	LineNo int
	Words  []string
	Raw    string // the line as written
}

// ParseRestore splits iptables-restore input (or iptables-save output)
// into tables. It understands what kproxy writes and what iptables-save
// prints; Fake and the modes' tests read restore input with it.
func ParseRestore(data string) ([]RestoreTable, error) {
	var tables []RestoreTable
	var cur *RestoreTable
	for i, raw := range strings.Split(data, "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			if cur != nil {
				return nil, fmt.Errorf("line %d: table %s started before COMMIT of %s", n, line, cur.Name)
			}
			tables = append(tables, RestoreTable{Name: line[1:]})
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
			cur.Chains = append(cur.Chains, f[0])
		default:
			words, err := splitWords(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			cur.Lines = append(cur.Lines, CommandLine{LineNo: n, Words: words, Raw: line})
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("table %s has no COMMIT", cur.Name)
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
		case (r == ' ' || r == '\t') && !inQuote:
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

// joinQuoted is the inverse of splitWords, quoting as iptables-save does.
func joinQuoted(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if strings.ContainsAny(w, " \t") || w == "" {
			w = `"` + w + `"`
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}
