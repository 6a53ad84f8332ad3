// Package golden compares test output with golden files under testdata/,
// or rewrites them when a test runs with its -update flag (each test
// package defines the flag, since two packages' flags would collide).
package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// Compare compares out with testdata/name, or with update writes out
// there. A difference fails the test and shows out, to review with
// -update and git diff.
func Compare(t testing.TB, name, out string, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != out {
		t.Errorf("output differs from %s (run with -update and review the diff):\n%s", path, out)
	}
}
