package harness

import "testing"

// TestOffendingLine checks that a failed load names the payload line both
// loaders complain about.
func TestOffendingLine(t *testing.T) {
	payload := "*nat\n:KUBE-SERVICES - [0:0]\n-A BAD\nCOMMIT\n"
	for stderr, want := range map[string]string{
		"iptables-restore: line 3 failed":                        "-A BAD",
		"/dev/stdin:2:1-5: Error: syntax error\nchain x {":       ":KUBE-SERVICES - [0:0]",
		"-:3:10-12: Error: Could not process rule: No such file": "-A BAD",
		"something else": "",
	} {
		if got := offendingLine(stderr, payload); got != want {
			t.Errorf("%q: got %q, want %q", stderr, got, want)
		}
	}
}
