package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RepoRoot returns the directory holding kproxy's go.mod, searching up from
// the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/kproxy/kproxy\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo root: no kproxy go.mod in the working directory or a parent")
		}
		dir = parent
	}
}

// BuildKproxy builds ./cmd/kproxy into dir and returns the binary's path.
func BuildKproxy(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kproxy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kproxy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kproxy: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}
