package xtables

import (
	"context"
	"fmt"
)

// Saver is the part of Tables that lists a table.
type Saver interface {
	Save(ctx context.Context, table string) ([]byte, error)
}

// SavedChains lists the chains iptables-save shows in table (none when
// the table does not exist).
func SavedChains(ctx context.Context, s Saver, table string) ([]string, error) {
	out, err := s.Save(ctx, table)
	if err != nil {
		return nil, err
	}
	tables, err := ParseRestore(string(out))
	if err != nil {
		return nil, fmt.Errorf("parse iptables-save -t %s: %w", table, err)
	}
	var chains []string
	for _, saved := range tables {
		chains = append(chains, saved.Chains...)
	}
	return chains, nil
}
