package xtables

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// openNetns opens a network namespace given by name (as in /run/netns)
// or by path.
func openNetns(ns string) (netns.NsHandle, error) {
	if strings.Contains(ns, "/") {
		return netns.GetFromPath(ns)
	}
	return netns.GetFromName(ns)
}

// InNetns runs fn on an OS thread inside network namespace ns (a name in
// /run/netns or a path; "" runs fn as is). Processes fn starts are forked
// from that thread and /proc/sys files it opens are the namespace's. fn
// runs on a fresh goroutine: if the thread cannot return to its own
// namespace it stays locked, and Go discards it.
func InNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	target, err := openNetns(ns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %q: %w", ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
