// Package innetns runs a function inside a network namespace: the one way
// kproxy (its iptables runner) and its tests (sockets, nft, sysctls) enter
// another namespace.
package innetns

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Run runs fn on an OS thread that has joined network namespace ns (a name
// in /run/netns or a path). Sockets fn creates belong to ns (they keep
// working after the thread leaves), processes it starts are forked from
// that thread and /proc/sys files it opens are the namespace's. fn must
// not start goroutines that expect to be in ns.
//
// An empty ns is an error, never the current namespace: a caller that
// means "here" says so by not calling Run.
//
// fn runs on a fresh goroutine locked to its thread; the thread returns
// to its original namespace afterwards or, if it cannot, stays locked and
// the runtime discards it when the goroutine exits.
func Run(ns string, fn func() error) error {
	if ns == "" {
		return errors.New("no network namespace given")
	}
	target, err := open(ns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			// Stay locked: the thread's namespace is not known for sure.
			errc <- fmt.Errorf("enter netns %q: %w", ns, err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("return from netns %q: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// open opens a network namespace given by name or by path.
func open(ns string) (netns.NsHandle, error) {
	if strings.Contains(ns, "/") {
		return netns.GetFromPath(ns)
	}
	return netns.GetFromName(ns)
}
