package iptables

import "github.com/kproxy/kproxy/internal/xtables"

// Kernel is the seam between the proxier and iptables: everything the
// iptables mode does to the kernel goes through it. xtables.Runner runs
// the real binaries; Fake behaves like them in memory.
type Kernel = xtables.Tables

// Fake is the in-memory Kernel the modes share.
type Fake = xtables.Fake

// NewFake returns an empty Fake (see xtables.NewFake).
func NewFake() *Fake { return xtables.NewFake() }
