package iptables

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
)

// listAllMin is the number of chains one table's restore must declare
// from which the input starts with "-S". iptables-nft (1.8.x) in --noflush
// mode keeps every chain an input names in a sorted linked list, which is
// quadratic in the number of chains (about 10 s of CPU for kube-proxy's
// 30,000 chains at 10,000 Services). A command that names no chain, first
// in the table, makes it fetch all chains in one dump instead; "-S" is the
// only harmless one (it lists the table on stdout, which is discarded).
// iptables-legacy just prints the listing.
const listAllMin = 500

// chainSums are the contents of chains (as a hash of their rules) by table:
// what kproxy last wrote, or what it read back from the kernel.
type chainSums map[string]map[string]uint64

// txn is one sync's change: the chains to write and to delete, by table.
// Like knftables' transactions, building it records the first invalid
// input as a sticky error (Err), and String shows exactly what Sync
// sends.
type txn struct {
	bodies  map[string]map[string]*body
	write   map[string][]string
	del     map[string][]string
	written map[string]int // rules written, by table
	err     error
}

// maxChainName is the longest chain name iptables accepts
// (XT_EXTENSION_MAXNAMELEN less the terminating NUL).
const maxChainName = 28

var tables = []string{tableFilter, tableNAT}

// newTxn compares the candidate chains with cur and keeps those that
// differ (a nil cur is an empty kernel). On a full sync every chain of res
// is a candidate; on a partial one only the shared chains and the chains of
// the Services rendered again, the others being unchanged by construction.
// stale lists chains to delete.
func newTxn(res *rendered, full bool, cur chainSums, seed maphash.Seed, stale map[string][]string) *txn {
	tx := &txn{
		bodies:  map[string]map[string]*body{tableFilter: {}, tableNAT: {}},
		write:   map[string][]string{},
		del:     map[string][]string{},
		written: map[string]int{tableFilter: 0, tableNAT: 0},
	}
	consider := func(table, chain string, b *body, sum uint64) {
		tx.check(chain)
		if old, ok := cur[table][chain]; ok && old == sum {
			return
		}
		if b.text == nil && b.rules > 0 && tx.err == nil {
			// Its text was dropped and not rendered again: writing it
			// would empty the chain.
			tx.err = fmt.Errorf("chain %s must be written but its rules were not rendered", chain)
		}
		tx.bodies[table][chain] = b
		tx.write[table] = append(tx.write[table], chain)
		tx.written[table] += b.rules
	}
	for _, table := range tables {
		for chain, b := range res.shared[table] {
			consider(table, chain, b, b.sumOf(seed))
		}
	}
	own := res.changed
	if full {
		own = res.services
	}
	for _, s := range own {
		for _, c := range s.own {
			consider(tableNAT, c.name, &c.body, c.sum)
		}
	}
	for table, cs := range stale {
		for _, c := range cs {
			if tx.bodies[table][c] == nil {
				tx.check(c)
				tx.del[table] = append(tx.del[table], c)
			}
		}
	}
	return tx
}

// check records a chain name iptables would reject as the sticky error.
func (tx *txn) check(chain string) {
	if tx.err == nil && (chain == "" || len(chain) > maxChainName || strings.ContainsAny(chain, " \t\n")) {
		tx.err = fmt.Errorf("invalid chain name %q", chain)
	}
}

// Err is the first invalid input the transaction was built with: such a
// transaction must not be sent.
func (tx *txn) Err() error { return tx.err }

// String is the iptables-restore input the transaction sends.
func (tx *txn) String() string { return string(tx.restoreInput(nil)) }

// empty reports whether the transaction changes nothing.
func (tx *txn) empty() bool {
	for _, table := range tables {
		if len(tx.write[table])+len(tx.del[table]) > 0 {
			return false
		}
	}
	return true
}

// restoreInput is the iptables-restore --noflush input: per table, the
// declarations (which create or flush) of the chains to write and delete
// — in descending name order for small inputs (iptables-nft inserts each
// name into a sorted list, and descending input makes that cheap), in
// scrambled order after "-S" for large ones —, their rules, then the
// deletions.
func (tx *txn) restoreInput(buf *bytes.Buffer) []byte {
	if buf == nil {
		buf = &bytes.Buffer{}
	}
	buf.Reset()
	for _, table := range tables {
		write, del := tx.write[table], tx.del[table]
		if len(write)+len(del) == 0 {
			continue
		}
		slices.SortFunc(write, descending)
		slices.SortFunc(del, descending)
		decl := slices.Concat(write, del)
		buf.WriteString("*" + table + "\n")
		if len(decl) >= listAllMin {
			buf.WriteString("-S\n")
			slices.SortFunc(decl, scrambled)
		} else {
			slices.SortFunc(decl, descending)
		}
		for _, c := range decl {
			buf.WriteString(":" + c + " - [0:0]\n")
		}
		for _, c := range write {
			buf.Write(tx.bodies[table][c].text)
		}
		for _, c := range del {
			buf.WriteString("-X " + c + "\n")
		}
		buf.WriteString("COMMIT\n")
	}
	return buf.Bytes()
}

func descending(a, b string) int { return strings.Compare(b, a) }

// scrambled orders chain names by a fixed hash of the name. The chains a
// large restore creates end up in the kernel in declaration order, and
// iptables-nft-save (1.8.x) sorts the chains it reads in a way that is
// quadratic on sorted input: 8.4 s of CPU for 30,000 chains created in
// name order (ascending or descending), 0.3 s for the same chains in
// scrambled order. Full syncs read the table back with iptables-save, so
// this is the cost of every restart. With "-S" first (see listAllMin) the
// restore itself does not care about the order.
func scrambled(a, b string) int {
	if ha, hb := fnv32a(a), fnv32a(b); ha != hb {
		return cmp.Compare(ha, hb)
	}
	return strings.Compare(a, b)
}

// fnv32a is FNV-1a of s, without allocating.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// apply records in cur what the kernel holds once the transaction is
// restored: the hashes of the chains it writes, without those it deletes.
func (tx *txn) apply(cur chainSums, seed maphash.Seed) {
	for _, table := range tables {
		if cur[table] == nil {
			cur[table] = map[string]uint64{}
		}
		for _, c := range tx.write[table] {
			cur[table][c] = tx.bodies[table][c].sumOf(seed)
		}
		for _, c := range tx.del[table] {
			delete(cur[table], c)
		}
	}
}

// readSums parses iptables-save output of one table into the hashes of
// the chains kproxy owns (fixed names, per-Service and bucket prefixes).
func readSums(save []byte, seed maphash.Seed) (map[string]uint64, error) {
	bodies := map[string][]byte{}
	for len(save) > 0 {
		line := save
		if i := bytes.IndexByte(save, '\n'); i >= 0 {
			line, save = save[:i+1], save[i+1:]
		} else {
			line, save = append(line, '\n'), nil
		}
		switch {
		case bytes.HasPrefix(line, []byte(":")):
			name, _, _ := strings.Cut(string(line[1:]), " ")
			if ownedChain(name) {
				if _, ok := bodies[name]; !ok {
					bodies[name] = []byte{}
				}
			}
		case bytes.HasPrefix(line, []byte("-A ")):
			rest := line[3:]
			i := bytes.IndexByte(rest, ' ')
			if i < 0 {
				i = len(rest) - 1
			}
			name := string(rest[:i])
			if ownedChain(name) {
				bodies[name] = append(bodies[name], line...)
			}
		}
	}
	out := make(map[string]uint64, len(bodies))
	for c, b := range bodies {
		out[c] = maphash.Bytes(seed, b)
	}
	return out, nil
}
