package nftables

import "math"

// mergeElementAdds merges consecutive element adds to one set or map into
// one command (of at most maxMergedElements): the same elements added in
// the same order, in few netlink messages instead of one each. A key seen
// twice starts a new command, so that nft judges a repeated key exactly
// as in separate commands.
func mergeElementAdds(text string) string { return compactLines(text, math.MaxInt) }

// groupChainRules (compactText, named for the tests of its blocks) writes runs of at least minRun chain and rule adds as
// `nft list table` prints a table: one table block, one chain block per
// chain, one rule per line. nft parses that form faster than a command
// per rule. The end state is the same: everything in a block is an add (a
// chain block adds the chain if it is missing and appends its rules; nft
// adds a block's chains before its rules). Any other command ends the
// run, so flushes and deletes keep their place.
func groupChainRules(text string, minRun int) string { return compactLines(text, minRun) }
