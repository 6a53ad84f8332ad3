package xtables

import (
	"errors"
	"testing"
)

func TestFailedLine(t *testing.T) {
	for in, want := range map[string]int{
		"iptables-restore: line 17 failed":                               17,
		"iptables-restore v1.8.9 (nf_tables): Error occurred at line: 5": 5,
		"something else": 0,
	} {
		if got := failedLine(in); got != want {
			t.Errorf("failedLine(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestRestoreErrorExcerpt: the error carries the offending line and its
// neighbours, not the whole input.
func TestRestoreErrorExcerpt(t *testing.T) {
	in := []byte("*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A A -j NOPE\n-A B -j RETURN\n-A B -j ACCEPT\n-A B -j DROP\nCOMMIT\n")
	re := NewRestoreError(in, "iptables-restore: line 5 failed", errors.New("exit status 1"))
	want := "   2: :A - [0:0]\n   3: :B - [0:0]\n   4: -A A -j B\n=> 5: -A A -j NOPE\n   6: -A B -j RETURN\n   7: -A B -j ACCEPT\n   8: -A B -j DROP\n"
	if re.Line != 5 || re.Excerpt != want {
		t.Errorf("line %d, excerpt:\n%s\nwant line 5, excerpt:\n%s", re.Line, re.Excerpt, want)
	}
	if NewRestoreError(in, "no line named", errors.New("exit status 1")).Excerpt != "" {
		t.Errorf("an error without a line has an excerpt")
	}
}
