package report

import "strings"

// Provenance says which kproxy source the measured binary was built from.
// A figure is only reproducible from a committed tree, so a run from a dirty
// tree is marked "uncommitted" wherever its figures appear.
type Provenance struct {
	Commit string `json:"commit"` // full hash of HEAD
	Clean  bool   `json:"clean"`  // no uncommitted changes when the binary was built
}

// ReadProvenance reads HEAD and whether the working tree is clean; it is
// empty when git cannot tell.
func ReadProvenance() Provenance {
	commit := firstLine(run("git", "rev-parse", "HEAD"))
	if commit == "" {
		return Provenance{}
	}
	status, err := runErr("git", "status", "--porcelain", "--untracked-files=no")
	return Provenance{Commit: commit, Clean: err == nil && strings.TrimSpace(status) == ""}
}

// Uncommitted reports whether the figures cannot be traced to a commit.
func (p Provenance) Uncommitted() bool { return p.Commit == "" || !p.Clean }

// String describes the tree for machine.md.
func (p Provenance) String() string {
	switch {
	case p.Commit == "":
		return "unknown (uncommitted)"
	case !p.Clean:
		return p.Commit + " plus uncommitted changes (uncommitted)"
	}
	return p.Commit + " (clean tree)"
}

// uncommittedNote heads every table of an uncommitted run.
const uncommittedNote = "**uncommitted**: built from a tree with uncommitted changes; not reproducible from a commit.\n\n"
