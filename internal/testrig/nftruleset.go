package testrig

import (
	"fmt"
	"slices"
	"strings"
)

// NFTTable is the table kube-proxy's nftables mode (and kproxy's) writes
// in each family.
const NFTTable = "kube-proxy"

// NFTRuleset is table ip kube-proxy in ns as nft lists it, in a canonical
// form two tables with the same content share: objects (chains, sets,
// maps) sorted by name, the elements of each set or map sorted; rules stay
// in kernel order. A missing table is an error.
func NFTRuleset(ns string) (string, error) {
	out, err := Exec(ns, "nft", "list", "table", "ip", NFTTable)
	if err != nil {
		return "", fmt.Errorf("nft list table ip %s in %s: %w", NFTTable, ns, err)
	}
	return CanonicalNFT(out), nil
}

// NFTTableExists reports whether ns has table ip kube-proxy.
func NFTTableExists(ns string) bool {
	_, err := Exec(ns, "nft", "list", "table", "ip", NFTTable)
	return err == nil
}

// CanonicalNFT sorts the objects of an `nft list table` listing by their
// first line and the elements inside each, for the reasons NFTRuleset
// gives: nft lists objects in creation order and elements in the order of
// the set's backend, which differ between a table built over many syncs
// and a fresh one.
func CanonicalNFT(listing string) string {
	var objects []string
	var cur []string
	for _, line := range strings.Split(listing, "\n") {
		switch {
		case cur != nil:
			cur = append(cur, line)
			if line == "\t}" {
				objects, cur = append(objects, strings.Join(sortedElements(cur), "\n")), nil
			}
		case strings.HasPrefix(line, "\t") && strings.HasSuffix(line, " {"):
			cur = []string{line}
		case strings.TrimSpace(line) != "" && line != "}":
			objects = append(objects, line) // the table's own lines
		}
	}
	slices.Sort(objects)
	return strings.Join(objects, "\n") + "\n"
}

// sortedElements rewrites an object's "elements = { a, b, ... }" block,
// which nft wraps over several lines, as one line with the elements
// sorted; other lines are kept as they are.
func sortedElements(lines []string) []string {
	var out, block []string
	inBlock := false
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		if !inBlock && strings.HasPrefix(trimmed, "elements = {") {
			inBlock, block = true, nil
			trimmed = strings.TrimPrefix(trimmed, "elements = {")
		}
		if !inBlock {
			out = append(out, line)
			continue
		}
		end := strings.HasSuffix(trimmed, "}")
		for _, e := range strings.Split(strings.TrimSuffix(trimmed, "}"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				block = append(block, e)
			}
		}
		if end {
			slices.Sort(block)
			out = append(out, "\t\telements = { "+strings.Join(block, ", ")+" }")
			inBlock = false
		}
	}
	return out
}
