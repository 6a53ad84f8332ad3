//go:build kind

package kind

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// summary is kproxy-echo's probe/load output (e2e/kind/echo Summary).
type summary struct {
	Sent     int            `json:"sent"`
	Answered int            `json:"answered"`
	Failed   int            `json:"failed"`
	By       map[string]int `json:"by"`
	Seen     map[string]int `json:"seen"`
	Errors   map[string]int `json:"errors"`
	Outage   float64        `json:"longest_outage"` // seconds
}

func (s summary) String() string {
	return fmt.Sprintf("sent %d, answered %d (by %v, seen %v), failed %d %v, longest outage %.1fs",
		s.Sent, s.Answered, s.By, s.Seen, s.Failed, s.Errors, s.Outage)
}

// from is where a probe starts: a client pod, or outside the cluster.
type from struct {
	pod string // "" for outside
}

var outsideCluster = from{}

func (f from) String() string {
	if f.pod == "" {
		return "outside"
	}
	return "pod " + f.pod
}

// probeArgs: -count requests one after another (load: for -duration).
func probeArgs(verb, proto, addr string, extra ...string) []string {
	return append([]string{verb, "-proto", proto, "-addr", addr, "-timeout", "2s"}, extra...)
}

// echo runs kproxy-echo in f and parses its summary.
func (c *cluster) echo(f from, args ...string) (summary, error) {
	var out string
	var err error
	if f.pod == "" {
		out, err = c.outside(append([]string{filepath.Join(c.binDir, "kproxy-echo")}, args...)...)
	} else {
		out, err = c.kubectl(append([]string{"exec", "-n", testNS, f.pod, "--", "/kproxy-echo"}, args...)...)
	}
	var s summary
	if err != nil {
		return s, fmt.Errorf("kproxy-echo from %s: %w", f, err)
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		return s, fmt.Errorf("kproxy-echo from %s: %q: %w", f, out, err)
	}
	return s, nil
}

// probe sends count requests from f to addr.
func (c *cluster) probe(f from, proto, addr string, count int) (summary, error) {
	return c.echo(f, probeArgs("probe", proto, addr, "-count", strconv.Itoa(count), "-interval", "5ms")...)
}

// load is a running kproxy-echo load: constant requests until stop.
type load struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
}

// startLoad starts requests from f to addr, one every 20ms, until stop.
func (c *cluster) startLoad(f from, proto, addr string) (*load, error) {
	args := probeArgs("load", proto, addr, "-interval", "20ms")
	var cmd *exec.Cmd
	if f.pod == "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.netns, filepath.Join(c.binDir, "kproxy-echo")}, args...)...)
	} else {
		cmd = exec.Command(c.script, append([]string{"kubectl", "exec", "-i", "-n", testNS, f.pod, "--", "/kproxy-echo"}, args...)...)
	}
	l := &load{name: fmt.Sprintf("%s → %s/%s", f, proto, addr), cmd: cmd}
	cmd.Stdout = &l.out
	cmd.Stderr = &l.out
	var err error
	if l.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	return l, cmd.Start()
}

// stop ends the load and returns its summary.
func (l *load) stop() (summary, error) {
	l.stdin.Close()
	err := l.cmd.Wait()
	var s summary
	if err != nil {
		return s, fmt.Errorf("load %s: %w: %s", l.name, err, l.out.String())
	}
	out := strings.TrimSpace(l.out.String())
	if i := strings.LastIndex(out, "\n"); i >= 0 {
		out = out[i+1:] // kubectl may print warnings first
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("load %s: %q: %w", l.name, out, err)
	}
	return s, nil
}

func hostPort(ip string, port int32) string { return net.JoinHostPort(ip, strconv.Itoa(int(port))) }
