package nftables

import (
	"strings"
)

// compactor writes `nft -f` input, one command at a time, in the form
// mergingNFT sends: element adds to one set or map merged into one
// command (mergeElementAdds), runs of chain and rule adds as table blocks
// (groupChainRules). Commands keep their order; a run or a group ends at
// the first command that cannot join it.
type compactor struct {
	out strings.Builder
	// minRun is the shortest run of chain and rule adds written as a
	// table block (math.MaxInt: none).
	minRun int
	run    []chainLine
	// The element group: its "add element FAMILY TABLE NAME", its
	// elements and their keys.
	target string
	group  []string
	keys   map[string]bool
	// declared are the chains added so far (see writeRun).
	declared map[chainKey]struct{}
}

// chainKey is a chain of a table ("FAMILY TABLE").
type chainKey struct{ table, chain string }

func newCompactor(minRun int) *compactor {
	return &compactor{minRun: minRun, keys: map[string]bool{}, declared: map[chainKey]struct{}{}}
}

// compactLines is text rewritten by a compactor.
func compactLines(text string, minRun int) string {
	c := newCompactor(minRun)
	c.out.Grow(len(text))
	for line := range strings.Lines(text) {
		c.line(strings.TrimSuffix(line, "\n"))
	}
	return c.String()
}

// compactText is knftables' transaction text as mergingNFT sends it.
func compactText(text string, minRun int) string { return compactLines(text, minRun) }

// line takes one command, without its newline.
func (c *compactor) line(line string) {
	if add, ok := parseElementAdd(line); ok {
		c.element(add)
		return
	}
	if l, ok := parseChainLine(line); ok {
		c.chainLine(l)
		return
	}
	c.other(line)
}

// element takes an element add.
func (c *compactor) element(add elementAdd) {
	c.endRun()
	if add.target != c.target || c.keys[add.key()] || len(c.group) == maxMergedElements {
		c.endGroup()
		c.target = add.target
	}
	c.keys[add.key()] = true
	c.group = append(c.group, add.element)
}

// chainLine takes a chain or rule add that may go into a block.
func (c *compactor) chainLine(l chainLine) {
	c.endGroup()
	if len(c.run) > 0 && l.table != c.run[0].table {
		c.endRun()
	}
	c.run = append(c.run, l)
}

// other takes any other command, written as it is.
func (c *compactor) other(line string) {
	c.endGroup()
	c.endRun()
	if k, ok := chainCommand(line, "add chain "); ok {
		c.declared[k] = struct{}{}
	} else if k, ok := chainCommand(line, "delete chain "); ok {
		delete(c.declared, k) // an add after it creates the chain anew
	}
	c.out.WriteString(line)
	c.out.WriteByte('\n')
}

// String ends the pending run or group and returns the text.
func (c *compactor) String() string {
	c.endGroup()
	c.endRun()
	return c.out.String()
}

func (c *compactor) endGroup() {
	if len(c.group) > 0 {
		c.out.WriteString(c.target)
		c.out.WriteString(" { ")
		for i, e := range c.group {
			if i > 0 {
				c.out.WriteString(", ")
			}
			c.out.WriteString(e)
		}
		c.out.WriteString(" }\n")
	}
	c.group, c.target = c.group[:0], ""
	clear(c.keys)
}

func (c *compactor) endRun() {
	switch {
	case len(c.run) == 0:
	case len(c.run) < c.minRun:
		for _, l := range c.run {
			l.write(&c.out)
			if l.rule == "" {
				c.declared[chainKey{l.table, l.chain}] = struct{}{}
			}
		}
	default:
		c.writeRun()
	}
	c.run = c.run[:0]
}

// writeRun writes the run as a table block, except the lines of chains an
// earlier command or an earlier chain of the block added, which follow it
// as lines. nft sends an add of each chain a block names, and the kernel
// takes an add of a chain that exists, even one added earlier in the same
// transaction, as an update, whose release it defers by an RCU grace
// period; closing nft's socket then waits for it (milliseconds, under strace),
// while a transaction that only creates ends at once.
func (c *compactor) writeRun() {
	late := c.lateLines()
	if len(late) == 0 {
		writeBlock(&c.out, c.run)
		return
	}
	block := make([]chainLine, 0, len(c.run)-len(late))
	next := 0 // into late
	for i, l := range c.run {
		if next < len(late) && late[next] == i {
			next++
			continue
		}
		block = append(block, l)
	}
	if len(block) > 0 {
		writeBlock(&c.out, block)
	}
	for _, i := range late {
		c.run[i].write(&c.out)
	}
}

// lateLines declares the run's chains in order and returns the indexes of
// the lines whose chain was declared before (none, usually: nil).
func (c *compactor) lateLines() []int {
	var late []int
	last, isLate := "", false
	for i, l := range c.run {
		if l.chain != last {
			k := chainKey{l.table, l.chain}
			_, isLate = c.declared[k]
			c.declared[k] = struct{}{}
			last = l.chain
		}
		if isLate {
			late = append(late, i)
		}
	}
	return late
}
