package xtables

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier"
)

// RestoreError is iptables-restore rejecting its input.
type RestoreError struct {
	// Line is the 1-based input line iptables-restore named, 0 if none.
	Line int
	// Excerpt is the input around Line, numbered, the offending line
	// marked "=>" (empty without a Line): what to log instead of the
	// whole input.
	Excerpt string
	Output  string
	Err     error
}

func (e *RestoreError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("iptables-restore failed at input line %d: %v: %s", e.Line, e.Err, e.Output)
	}
	return fmt.Sprintf("iptables-restore failed: %v: %s", e.Err, e.Output)
}

func (e *RestoreError) Unwrap() error { return e.Err }

// IsRestoreError reports whether err is iptables-restore rejecting input
// (as opposed to the binary being missing or the context ending).
func IsRestoreError(err error) bool {
	var re *RestoreError
	return errors.As(err, &re)
}

// NewRestoreError describes iptables-restore's rejection of input: the
// line its output names, and the input around that line.
func NewRestoreError(input []byte, output string, err error) *RestoreError {
	line := failedLine(output)
	return &RestoreError{Line: line, Excerpt: excerpt(input, line), Output: output, Err: err}
}

// restoreLineRE finds the failing line in iptables-restore's messages, for
// example "iptables-restore: line 17 failed" or "Error occurred at line: 17".
var restoreLineRE = regexp.MustCompile(`(?:line:? |line )(\d+)`)

// failedLine extracts the line number from iptables-restore's output.
func failedLine(output string) int {
	m := restoreLineRE.FindStringSubmatch(output)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// excerpt returns the lines of input around line (1-based), numbered,
// line marked with "=>"; "" when line is not in input.
func excerpt(input []byte, line int) string {
	lines := strings.Split(string(input), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	from, to := max(line-3, 1), min(line+3, len(lines))
	var b strings.Builder
	for n := from; n <= to; n++ {
		mark := "   "
		if n == line {
			mark = "=> "
		}
		fmt.Fprintf(&b, "%s%d: %s\n", mark, n, lines[n-1])
	}
	return b.String()
}

// LogRestoreFailure logs a failed restore: for a rejected input the
// lines around the one iptables-restore named, not the whole input.
func LogRestoreFailure(err error, family proxier.Family) {
	var re *RestoreError
	if !errors.As(err, &re) || re.Excerpt == "" {
		klog.ErrorS(err, "iptables-restore failed", "family", family)
		return
	}
	klog.ErrorS(err, "iptables-restore rejected the rules", "family", family, "line", re.Line, "context", re.Excerpt)
}
