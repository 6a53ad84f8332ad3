package userspacebench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
)

// The reference proxy: haproxy in TCP mode with splice, the best-known
// userspace TCP proxy, listening on the node's address and forwarding to
// the same server pod as the Services. It answers "what does a mature
// TCP-terminating proxy get on this machine" in the same run.
const (
	haproxyBulk = "198.51.100.11:19000"
	haproxyEcho = "198.51.100.11:19001"
)

// haproxyConfig: one frontend/backend pair per Service; splice both ways
// always (splice-auto would only splice once buffers fill).
func haproxyConfig() string {
	var b strings.Builder
	b.WriteString("global\n  maxconn 1000\n")
	b.WriteString("defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n")
	b.WriteString("  option splice-request\n  option splice-response\n")
	for _, p := range []struct{ name, bind, server string }{
		{"bulk", haproxyBulk, serverIP + ":9000"},
		{"echo", haproxyEcho, serverIP + ":9001"},
	} {
		fmt.Fprintf(&b, "frontend %s\n  bind %s\n  default_backend %s\nbackend %s\n  server s1 %s\n", p.name, p.bind, p.name, p.name, p.server)
	}
	return b.String()
}

// startHAProxy runs haproxy in the node namespace, fetched by
// hack/fetch-haproxy.sh into the cache. It returns nil, with a log line,
// when it cannot be fetched: the benchmark then reports kproxy and direct
// only.
func startHAProxy(t *testing.T, nodeNetns string) *testrig.Process {
	script, err := testrig.RepoFile(filepath.Join("hack", "fetch-haproxy.sh"))
	if err != nil {
		t.Logf("haproxy reference skipped: %v", err)
		return nil
	}
	out, err := exec.Command(script).Output()
	if err != nil {
		t.Logf("haproxy reference skipped: %s: %v", script, err)
		return nil
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig()), 0o644); err != nil {
		t.Fatal(err)
	}
	// -db: stay in the foreground, one process (its PID is the one we
	// account CPU to).
	return testrig.StartProcess(t, nodeNetns, strings.TrimSpace(string(out)), "-db", "-f", cfg)
}
