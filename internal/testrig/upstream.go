package testrig

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// UpstreamVersion is the Kubernetes version hack/build-upstream.sh builds.
const UpstreamVersion = "v1.37.2"

// Upstream binary names, as built by hack/build-upstream.sh.
const (
	BinEtcd          = "etcd"
	BinKubeAPIServer = "kube-apiserver"
	BinKubeProxy     = "kube-proxy"
	BinKubectl       = "kubectl"
)

// ErrUpstreamMissing means the upstream binaries are not built.
var ErrUpstreamMissing = errors.New("upstream binaries missing (run hack/build-upstream.sh, about 8 min the first time)")

// UpstreamBinDir is where hack/build-upstream.sh puts the binaries:
// $KPROXY_UPSTREAM_BIN if set, else
// ${KPROXY_CACHE:-$HOME/.cache/kproxy}/upstream-v1.37.2/bin.
func UpstreamBinDir() string {
	if dir := os.Getenv("KPROXY_UPSTREAM_BIN"); dir != "" {
		return dir
	}
	cache := os.Getenv("KPROXY_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache", "kproxy")
	}
	return filepath.Join(cache, "upstream-"+UpstreamVersion, "bin")
}

// UpstreamBinary returns the path of an upstream binary, or an error wrapping
// ErrUpstreamMissing.
func UpstreamBinary(name string) (string, error) {
	path := filepath.Join(UpstreamBinDir(), name)
	if st, err := os.Stat(path); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s: %w", path, ErrUpstreamMissing)
	}
	return path, nil
}

// EnsureUpstream returns the directory holding all four upstream binaries. If
// one is missing and build is true it runs hack/build-upstream.sh (found by
// walking up from the working directory) first; otherwise the error wraps
// ErrUpstreamMissing.
func EnsureUpstream(build bool) (string, error) {
	missing := missingUpstream()
	if len(missing) == 0 {
		return UpstreamBinDir(), nil
	}
	if !build {
		return "", fmt.Errorf("%s in %s: %w", strings.Join(missing, ", "), UpstreamBinDir(), ErrUpstreamMissing)
	}
	script, err := findRepoFile(filepath.Join("hack", "build-upstream.sh"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(script)
	cmd.Stderr = os.Stderr
	if out, err := cmd.Output(); err != nil {
		return "", fmt.Errorf("%s: %w (stdout: %s)", script, err, out)
	}
	if missing := missingUpstream(); len(missing) > 0 {
		return "", fmt.Errorf("%s ran but %s are still missing in %s", script, strings.Join(missing, ", "), UpstreamBinDir())
	}
	return UpstreamBinDir(), nil
}

// RequireUpstream returns the upstream bin dir. If binaries are missing it skips
// the test, unless KPROXY_REQUIRE_KERNEL=1 or KPROXY_BUILD_UPSTREAM=1, in which
// case it builds them (slow the first time) and fails the test if that fails.
func RequireUpstream(t testing.TB) string {
	t.Helper()
	build := KernelRequired() || os.Getenv("KPROXY_BUILD_UPSTREAM") == "1"
	dir, err := EnsureUpstream(build)
	if err != nil {
		SkipOrFail(t, err.Error())
	}
	return dir
}

func missingUpstream() []string {
	var missing []string
	for _, name := range []string{BinEtcd, BinKubeAPIServer, BinKubeProxy, BinKubectl} {
		if _, err := UpstreamBinary(name); err != nil {
			missing = append(missing, name)
		}
	}
	return missing
}

// findRepoFile looks for rel in the working directory and its parents.
func findRepoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", rel, err)
	}
	for {
		path := filepath.Join(dir, rel)
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: not in the working directory or a parent", rel)
		}
		dir = parent
	}
}
