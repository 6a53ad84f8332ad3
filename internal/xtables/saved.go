package xtables

import (
	"context"
	"strings"
)

// Saver is the part of Tables that lists a table.
type Saver interface {
	Save(ctx context.Context, table string) ([]byte, error)
}

// SavedChains lists the chains iptables-save shows in table (none when
// the table does not exist). It reads only the chain lines (":NAME POLICY
// [p:b]"), so no rule of other software, however quoted, can fail it.
func SavedChains(ctx context.Context, s Saver, table string) ([]string, error) {
	out, err := s.Save(ctx, table)
	if err != nil {
		return nil, err
	}
	var chains []string
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, ":"); ok {
			if name, _, _ := strings.Cut(strings.TrimSpace(rest), " "); name != "" {
				chains = append(chains, name)
			}
		}
	}
	return chains, nil
}
