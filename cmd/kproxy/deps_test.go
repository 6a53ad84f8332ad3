package main

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestLinksOnlyTheAPIGroupsItReads: the daemon reads core/v1,
// discovery/v1 and networking/v1 only. client-go's Clientset, informer
// factory or scheme package would link and register every API group
// (about 10 MB more RSS from the first second; see proxier.APIClient).
func TestLinksOnlyTheAPIGroupsItReads(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list -deps: %v\n%s", err, ee.Stderr)
	}
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var groups []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "k8s.io/api/") {
			groups = append(groups, p)
		}
	}
	want := []string{"k8s.io/api/core/v1", "k8s.io/api/discovery/v1", "k8s.io/api/networking/v1"}
	slices.Sort(groups)
	if !slices.Equal(groups, want) {
		t.Errorf("kproxy links API groups %q, want only %q", groups, want)
	}
}
