package nftables

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestMergeElementAdds: runs of element adds to one set or map become one
// command, in order; anything else, a change of target, a repeated key or
// an element with a comment ends the run.
func TestMergeElementAdds(t *testing.T) {
	in := strings.Join([]string{
		"add chain ip kube-proxy a/b",
		"add element ip kube-proxy service-ips { 10.0.0.1 . tcp . 80 : goto a/b }",
		"add element ip kube-proxy service-ips { 10.0.0.2 . tcp . 80 : goto a/b }",
		"add element ip kube-proxy cluster-ips { 10.0.0.1 }",
		"add element ip kube-proxy cluster-ips { 10.0.0.2 }",
		"add element ip kube-proxy cluster-ips { 10.0.0.1 }",
		`add element ip kube-proxy no-endpoint-services { 10.0.0.3 . tcp . 80 comment "a/c:x" : goto reject-chain }`,
		`add element ip kube-proxy no-endpoint-services { 10.0.0.4 . tcp . 80 comment "a/d:x" : goto reject-chain }`,
		"delete element ip kube-proxy cluster-ips { 10.0.0.9 }",
		"delete element ip kube-proxy cluster-ips { 10.0.0.8 }",
		"add element ip kube-proxy cluster-ips { 10.0.0.9 }",
		"add rule ip kube-proxy a/b dnat to 10.1.0.1:80",
		"add element ip kube-proxy cluster-ips { 10.0.0.7 }",
	}, "\n")
	want := strings.Join([]string{
		"add chain ip kube-proxy a/b",
		"add element ip kube-proxy service-ips { 10.0.0.1 . tcp . 80 : goto a/b, 10.0.0.2 . tcp . 80 : goto a/b }",
		"add element ip kube-proxy cluster-ips { 10.0.0.1, 10.0.0.2 }",
		"add element ip kube-proxy cluster-ips { 10.0.0.1 }",
		`add element ip kube-proxy no-endpoint-services { 10.0.0.3 . tcp . 80 comment "a/c:x" : goto reject-chain }`,
		`add element ip kube-proxy no-endpoint-services { 10.0.0.4 . tcp . 80 comment "a/d:x" : goto reject-chain }`,
		"delete element ip kube-proxy cluster-ips { 10.0.0.9 }",
		"delete element ip kube-proxy cluster-ips { 10.0.0.8 }",
		"add element ip kube-proxy cluster-ips { 10.0.0.9 }",
		"add rule ip kube-proxy a/b dnat to 10.1.0.1:80",
		"add element ip kube-proxy cluster-ips { 10.0.0.7 }",
		"",
	}, "\n")
	if got := mergeElementAdds(in); got != want {
		t.Errorf("mergeElementAdds:\n%s", lineDiff(got, want))
	}
}

// TestParseElementAdd: only lines of the form knftables writes for one
// element without a comment are taken apart.
func TestParseElementAdd(t *testing.T) {
	for line, ok := range map[string]bool{
		"add element ip kube-proxy s { 1.2.3.4 }":                      true,
		"add element ip6 kube-proxy m { fd00::1 . tcp . 80 : goto x }": true,
		"add element ip kube-proxy s { }":                              false,
		"add element ip kube-proxy s { 1.2.3.4, 1.2.3.5 }":             false,
		`add element ip kube-proxy s { 1.2.3.4 comment "x" }`:          false,
		"add element ip kube-proxy s 1.2.3.4":                          false,
		"add element kube-proxy s { 1.2.3.4 }":                         false,
		"delete element ip kube-proxy s { 1.2.3.4 }":                   false,
	} {
		if _, got := parseElementAdd(line); got != ok {
			t.Errorf("parseElementAdd(%q) ok = %v, want %v", line, got, ok)
		}
	}
}

// TestMergeElementAddsBounded: a run longer than maxMergedElements is cut
// into commands of at most that many elements.
func TestMergeElementAddsBounded(t *testing.T) {
	var in strings.Builder
	n := 2*maxMergedElements + 1
	for i := range n {
		fmt.Fprintf(&in, "add element ip kube-proxy s { 10.0.%d.%d }\n", i/250, i%250)
	}
	var sizes []int
	for line := range strings.Lines(mergeElementAdds(in.String())) {
		sizes = append(sizes, strings.Count(line, ",")+1)
	}
	if want := []int{maxMergedElements, maxMergedElements, 1}; !slices.Equal(sizes, want) {
		t.Errorf("commands of %v elements, want %v", sizes, want)
	}
}

// TestErrorLines: of nft's stderr only the error messages are kept, not
// the input lines and markers it echoes.
func TestErrorLines(t *testing.T) {
	stderr := "/dev/stdin:6:41-63: Error: Could not process rule: No such file or directory\n" +
		"add element ip kube-proxy m { 10.0.0.1 . tcp . 80 : goto x }\n" +
		"                                        ^^^^^^^^^^^^^^^^^^^^^^^\n"
	want := "/dev/stdin:6:41-63: Error: Could not process rule: No such file or directory"
	if got := errorLines(stderr, errors.New("exit status 1")); got != want {
		t.Errorf("errorLines = %q, want %q", got, want)
	}
	if got := errorLines("", errors.New("exit status 1")); got != "exit status 1" {
		t.Errorf("errorLines of no stderr = %q", got)
	}
}

// TestExcerpt: a long line is cut around the columns nft names; a short
// one, or one without columns, is kept whole.
func TestExcerpt(t *testing.T) {
	long := strings.Repeat("a", 500) + "BAD" + strings.Repeat("b", 500)
	got := excerpt(long, 501, 503)
	if !strings.Contains(got, "BAD") || len(got) > 3*excerptContext || !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "…") {
		t.Errorf("excerpt = %q", got)
	}
	if got := excerpt(long, 0, 0); got != long {
		t.Errorf("excerpt without columns cut the line")
	}
	if got := excerpt("add chain x", 1, 3); got != "add chain x" {
		t.Errorf("excerpt of a short line = %q", got)
	}
}
