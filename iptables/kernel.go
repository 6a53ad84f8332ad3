package iptables

import "github.com/kproxy/kproxy/internal/xtables"

// Kernel is the seam between the proxier and iptables: everything the
// iptables mode does to the kernel goes through it. xtables.Runner runs
// the real binaries; Fake behaves like them in memory.
type Kernel = xtables.Tables
