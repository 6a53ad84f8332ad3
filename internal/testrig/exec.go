package testrig

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// execTimeout bounds every short command the rig runs, so a wedged tool fails
// the test instead of hanging it.
const execTimeout = 60 * time.Second

// Command returns an exec.Cmd running args inside network namespace ns (through
// "ip netns exec"), or on the host if ns is "".
func Command(ctx context.Context, ns string, args ...string) *exec.Cmd {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	return exec.CommandContext(ctx, args[0], args[1:]...)
}

// Exec runs args inside network namespace ns (or on the host if ns is "") and
// returns its stdout. The error names the namespace and the command and carries
// the exit status and stderr.
func Exec(ns string, args ...string) (string, error) {
	return ExecInput(ns, "", args...)
}

// ExecInput is Exec with stdin (e.g. for iptables-restore or "ip -batch -").
func ExecInput(ns, stdin string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("exec in netns %q: no command", ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := Command(ctx, ns, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		where := "on the host"
		if ns != "" {
			where = fmt.Sprintf("in netns %s", ns)
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s %q: %w: %s", where, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// Run is Exec that fails the test on error.
func Run(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := Exec(ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
