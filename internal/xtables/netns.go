package xtables

import "github.com/kproxy/kproxy/internal/innetns"

// InNetns runs fn inside network namespace ns (a name in /run/netns or a
// path; "", the runner's default, runs fn as is, in the current one).
// Processes fn starts are forked from the namespace's thread and /proc/sys
// files it opens are the namespace's.
func InNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	return innetns.Run(ns, fn)
}
