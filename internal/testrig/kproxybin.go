package testrig

import (
	"crypto/sha256"
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
// ${KPROXY_CACHE:-$HOME/.cache/kproxy}/bin, named after the tree's path,
// so concurrent test processes do not see a half-written file nor another
// checkout's build; go's build cache keeps rebuilds fast.
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
	// One name per source tree: several checkouts (git worktrees) test at
	// once on one machine, and each must run its own build. The same tree
	// makes the same binary, so a concurrent process of that tree replacing
	// it is harmless (a running binary keeps its inode).
	final := filepath.Join(dir, binaryName(root))
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("build kproxy: %w", err)
	}
	return final, nil
}

// binaryName is the name of the kproxy binary built from the tree at root.
func binaryName(root string) string {
	sum := sha256.Sum256([]byte(root))
	return fmt.Sprintf("kproxy-%x", sum[:6])
}
