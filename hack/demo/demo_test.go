package main

import (
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestDemo runs the demo end to end (both modes it shows), so that the
// README's first command cannot rot.
func TestDemo(t *testing.T) {
	testrig.RequireRoot(t)
	testrig.RequireUpstream(t)
	for _, mode := range []string{"iptables", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			s := &testrig.MainScope{}
			defer s.Close()
			if err := run(s, mode, 6); err != nil {
				s.MarkFailed()
				t.Fatal(err)
			}
		})
	}
}
