package faults

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiServices lists "ns/name:port" of every Service port in the rig's
// API namespace.
func (r *rig) apiServices(ctx context.Context) ([]string, error) {
	l, err := r.cp.Client.CoreV1().Services(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range l.Items {
		if s.Name == "kubernetes" {
			continue
		}
		for _, p := range s.Spec.Ports {
			out = append(out, s.Namespace+"/"+s.Name+":"+p.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// waitServicesConverged waits until the node's nat KUBE-SERVICES serves
// exactly the API's Services (the kubernetes Service aside).
func (r *rig) waitServicesConverged(ctx context.Context, within time.Duration) time.Duration {
	r.t.Helper()
	start := time.Now()
	var got, want []string
	for time.Since(start) < within {
		var err error
		if want, err = r.apiServices(ctx); err == nil {
			got = slices.DeleteFunc(serviceComments(r.t, r.node.Netns), func(s string) bool { return strings.HasPrefix(s, "default/kubernetes:") })
			if slices.Equal(got, want) {
				return time.Since(start)
			}
		}
		r.failIfExited()
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("not converged within %v:\n got %q\nwant %q\n%s", within, got, want, r.kp.Tail(30))
	return 0
}

var (
	chainDeclRE = regexp.MustCompile(`(?m)^:(KUBE-(?:SVC|SVL|SEP|EXT|FW)-[A-Z0-9]+|KPROXY-SVCS-[A-Z0-9]+) `)
	jumpRE      = regexp.MustCompile(`-j (\S+)`)
)

// checkNoStaleOrDuplicate fails on a per-Service or dispatch bucket
// (KPROXY-SVCS-*) chain that nothing jumps to (left behind) and on a
// rule that appears twice in a built-in chain (a jump rule ensured twice).
func checkNoStaleOrDuplicate(t *testing.T, dump string) {
	t.Helper()
	targets := map[string]bool{}
	for _, m := range jumpRE.FindAllStringSubmatch(dump, -1) {
		targets[m[1]] = true
	}
	for _, m := range chainDeclRE.FindAllStringSubmatch(dump, -1) {
		if !targets[m[1]] {
			t.Errorf("stale chain %s: declared but nothing jumps to it", m[1])
		}
	}
	seen := map[string]bool{}
	table := ""
	for _, l := range strings.Split(dump, "\n") {
		if strings.HasPrefix(l, "*") {
			table = l
		}
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "-A" || strings.HasPrefix(f[1], "KUBE-") {
			continue
		}
		if seen[table+l] {
			t.Errorf("duplicated rule in %s: %s", table, l)
		}
		seen[table+l] = true
	}
}
