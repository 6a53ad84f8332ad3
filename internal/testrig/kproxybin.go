package testrig

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// EnvKproxyBin names a prebuilt kproxy binary for the tests to use instead
// of building one.
const EnvKproxyBin = "KPROXY_BIN"

var kproxyBin struct {
	once sync.Once
	path string
	err  error
}

// KproxyBinary returns the path of a kproxy binary built from this working
// tree (go build ./cmd/kproxy), once per test process; $KPROXY_BIN, when
// set, is used as is. The binary is written atomically under
// ${KPROXY_CACHE:-$HOME/.cache/kproxy}/bin, so concurrent test processes do
// not see a half-written file; go's build cache keeps rebuilds fast.
func KproxyBinary() (string, error) {
	kproxyBin.once.Do(func() { kproxyBin.path, kproxyBin.err = buildKproxy() })
	return kproxyBin.path, kproxyBin.err
}

// RequireKproxyBinary is KproxyBinary that fails the test on error.
func RequireKproxyBinary(t testing.TB) string {
	t.Helper()
	p, err := KproxyBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func buildKproxy() (string, error) {
	if p := os.Getenv(EnvKproxyBin); p != "" {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s=%s: not an executable", EnvKproxyBin, p)
		}
		return p, nil
	}
	gomod, err := findRepoFile("go.mod")
	if err != nil {
		return "", fmt.Errorf("build kproxy: %w", err)
	}
	root := filepath.Dir(gomod)
	cache := os.Getenv("KPROXY_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache", "kproxy")
	}
	dir := filepath.Join(cache, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build kproxy: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "kproxy-*.tmp")
	if err != nil {
		return "", fmt.Errorf("build kproxy: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/kproxy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kproxy: %w\n%s", err, out)
	}
	// Same tree, same binary: a concurrent process replacing it is harmless
	// (a running binary keeps its inode).
	final := filepath.Join(dir, "kproxy")
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("build kproxy: %w", err)
	}
	return final, nil
}
