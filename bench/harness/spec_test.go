package harness

import (
	"slices"
	"testing"
)

// TestSameFlags checks that every proxy gets the same command line but for
// its binary and --proxy-mode.
func TestSameFlags(t *testing.T) {
	var want []string
	for _, s := range DefaultSpecs("kproxy", "", "kube-proxy", "") {
		args := slices.DeleteFunc(s.Args("kc", "node-1")[1:], func(a string) bool { return a == "--proxy-mode="+s.Mode })
		if want == nil {
			want = args
			continue
		}
		if !slices.Equal(args, want) {
			t.Errorf("%s: flags %v, want %v", s.Name, args, want)
		}
	}
}
