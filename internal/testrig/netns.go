package testrig

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// NetnsPrefix starts the name of every network namespace the rig creates.
const NetnsPrefix = "kpt-"

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// RandomID returns n random lowercase hex characters.
func RandomID(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on Linux; keep going with zeros rather than panic.
		return strings.Repeat("0", n)
	}
	return hex.EncodeToString(b)[:n]
}

// UniqueName returns NetnsPrefix + a random id + "-" + suffix (no suffix if
// empty), e.g. "kpt-3fa9c1-node1".
func UniqueName(suffix string) string {
	name := NetnsPrefix + RandomID(6)
	if suffix != "" {
		name += "-" + suffix
	}
	return name
}

// CreateNetns creates the named network namespace with loopback up and deletes
// it when s ends (also when the test fails). Processes still running in it keep
// the namespace alive until they exit, so stop them first (cleanups run last
// registered first, so processes started later are stopped earlier).
func CreateNetns(s Scope, name string) error {
	if _, err := Exec("", "ip", "netns", "add", name); err != nil {
		return fmt.Errorf("create netns: %w", err)
	}
	s.Cleanup(func() {
		if err := DeleteNetns(name); err != nil {
			s.Logf("cleanup: %v", err)
		}
	})
	if _, err := Exec("", "ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

// NewNetns creates a network namespace named UniqueName(suffix), deleted in
// cleanup, and returns its name. It fails the test on error.
func NewNetns(t testing.TB, suffix string) string {
	t.Helper()
	RequireRoot(t)
	name := UniqueName(suffix)
	if err := CreateNetns(t, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// DeleteNetns deletes a named network namespace; a missing one is not an error.
func DeleteNetns(name string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); os.IsNotExist(err) {
		return nil
	}
	if _, err := Exec("", "ip", "netns", "delete", name); err != nil {
		return fmt.Errorf("delete netns: %w", err)
	}
	return nil
}

// ListNetns returns the named network namespaces that start with prefix.
func ListNetns(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// SetSysctl writes a per-namespace sysctl (key in dotted form, e.g.
// "net.ipv4.ip_forward") inside network namespace ns. It refuses an empty ns:
// the rig never changes host-wide settings.
func SetSysctl(ns, key, value string) error {
	if ns == "" {
		return fmt.Errorf("set sysctl %s: refusing to write in the root namespace", key)
	}
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return DoInNetns(ns, func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("netns %s: set sysctl %s=%s: %w", ns, key, value, err)
		}
		return nil
	})
}

// GetSysctl reads a sysctl inside network namespace ns.
func GetSysctl(ns, key string) (string, error) {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	var v string
	err := DoInNetns(ns, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("netns %s: get sysctl %s: %w", ns, key, err)
		}
		v = strings.TrimSpace(string(b))
		return nil
	})
	return v, err
}
