package nftables

import (
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
