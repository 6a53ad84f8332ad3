package userspacebench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kproxy/kproxy/internal/testrig"
)

// The reference proxy: haproxy in TCP mode with splice, the best-known
// userspace TCP proxy, forwarding to the same server pod as the Services.
// It answers "what does a mature TCP-terminating proxy get on this
// machine" in the same run. Clients reach it as they reach kproxy's proxy:
// a Service-like address that a nat REDIRECT rule in the node sends to its
// port, so that both pay the same NAT.
var haproxyFrontends = []struct {
	name, vip string
	port      int // haproxy's port
	server    string
}{
	{"bulk", "10.96.0.200:9000", 19000, serverIP + ":9000"},
	{"echo", "10.96.0.201:9001", 19001, serverIP + ":9001"},
}

// Addresses the client dials.
var (
	haproxyBulk = haproxyFrontends[0].vip
	haproxyEcho = haproxyFrontends[1].vip
)

// haproxyConfig: one frontend/backend pair per Service; splice both ways
// always (splice-auto would only splice once buffers fill).
func haproxyConfig() string {
	var b strings.Builder
	b.WriteString("global\n  maxconn 1000\n")
	b.WriteString("defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n")
	b.WriteString("  option splice-request\n  option splice-response\n")
	for _, f := range haproxyFrontends {
		fmt.Fprintf(&b, "frontend %s\n  bind :%d\n  default_backend %s\nbackend %s\n  server s1 %s\n", f.name, f.port, f.name, f.name, f.server)
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
	for _, f := range haproxyFrontends {
		ip, port, _ := strings.Cut(f.vip, ":")
		testrig.Run(t, nodeNetns, "iptables", "-t", "nat", "-I", "PREROUTING", "-d", ip+"/32", "-p", "tcp", "--dport", port,
			"-j", "REDIRECT", "--to-ports", strconv.Itoa(f.port))
	}
	// -db: stay in the foreground, one process (its PID is the one we
	// account CPU to).
	return testrig.StartProcess(t, nodeNetns, strings.TrimSpace(string(out)), "-db", "-f", cfg)
}
