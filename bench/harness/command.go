package harness

import (
	"path/filepath"
	"strings"
)

// CommandLine renders the bench's arguments for the report without any
// machine-local path: paths inside the repository become relative to it,
// other absolute paths (e.g. a binary in /tmp) keep only their base name.
// Committed results then say nothing about where they were produced.
func CommandLine(root string, args []string) string {
	out := []string{"go run ./bench"}
	for _, a := range args {
		out = append(out, localPath(root, a))
	}
	return strings.Join(out, " ")
}

func localPath(root, arg string) string {
	flag, val, hasEq := strings.Cut(arg, "=")
	if !hasEq {
		flag, val = "", arg
	}
	if filepath.IsAbs(val) {
		if rel, err := filepath.Rel(root, val); err == nil && !strings.HasPrefix(rel, "..") {
			val = rel
		} else {
			val = filepath.Base(val)
		}
	}
	if hasEq {
		return flag + "=" + val
	}
	return val
}
