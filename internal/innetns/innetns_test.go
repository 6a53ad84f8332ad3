package innetns_test

import (
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/kproxy/kproxy/internal/innetns"
	"github.com/kproxy/kproxy/internal/testrig"
)

// TestRunRefusesNoNamespace: an empty or missing namespace is an error and
// fn never runs (in particular not in the caller's namespace).
func TestRunRefusesNoNamespace(t *testing.T) {
	for _, ns := range []string{"", "kproxy-no-such-netns-" + testrig.RandomID(6)} {
		ran := false
		err := innetns.Run(ns, func() error { ran = true; return nil })
		if err == nil || ran {
			t.Errorf("Run(%q): err %v, fn ran %v; want an error and fn not run", ns, err, ran)
		}
	}
}

// TestKernelRunEntersNamespace: fn runs in the named namespace (by name and
// by path), sees only its interfaces, and its error comes back.
func TestKernelRunEntersNamespace(t *testing.T) {
	name := testrig.NewNetns(t, "innetns")
	want, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	for _, ns := range []string{name, filepath.Join("/run/netns", name)} {
		var inside netns.NsHandle
		var links []net.Interface
		err := innetns.Run(ns, func() error {
			var err error
			if inside, err = netns.Get(); err != nil {
				return err
			}
			links, err = net.Interfaces()
			return err
		})
		if err != nil {
			t.Fatalf("Run(%q): %v", ns, err)
		}
		if !inside.Equal(want) {
			t.Errorf("Run(%q): fn ran in %s, want %s", ns, inside, want)
		}
		inside.Close()
		if len(links) != 1 || links[0].Name != "lo" {
			t.Errorf("Run(%q): fn saw interfaces %v, want only lo", ns, links)
		}
	}
	sentinel := errors.New("from fn")
	if err := innetns.Run(name, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Run: err %v, want fn's error", err)
	}
}
