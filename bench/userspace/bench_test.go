package userspacebench

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

var write = flag.Bool("write", false, "write the figures to RESULTS.md")

const serverIP = "10.244.1.11" // node1-pod1; the client is node1-pod0

// sinkBuf is the bulk receiver's read size.
var sinkBuf = envInt("KPROXY_BENCH_SINKBUF", 256<<10)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	if os.Getenv(envProxy) != "" {
		os.Exit(runProxy())
	}
	os.Exit(m.Run())
}

// servers: a sink on 9000 (reads everything, then answers "ok") and an
// echo on 9001, in the server pod.
func startServers(t *testing.T, ns string) {
	bulk, err := testrig.ListenInNetns(ns, "tcp4", serverIP+":9000")
	if err != nil {
		t.Fatal(err)
	}
	echo, err := testrig.ListenInNetns(ns, "tcp4", serverIP+":9001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bulk.Close(); echo.Close() })
	serve := func(l net.Listener, h func(net.Conn)) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); h(c) }()
		}
	}
	go serve(bulk, func(c net.Conn) {
		// Read in 256 KiB chunks like a real bulk receiver (iperf3 reads
		// 128 KiB); io.Copy to io.Discard would read 8 KiB at a time.
		buf := make([]byte, sinkBuf)
		for {
			_, err := c.Read(buf)
			if err == io.EOF {
				_, _ = c.Write([]byte("ok"))
				return
			}
			if err != nil {
				return
			}
		}
	})
	go serve(echo, func(c net.Conn) {
		buf := make([]byte, 512)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
}

// bulk sends for d and returns the goodput in Gbit/s, measured until the
// sink has read everything.
func bulk(ns, addr string, d time.Duration) (float64, error) {
	s, err := bulkCPU(ns, addr, d, 0)
	return s.gbps, err
}

// bulkCPU is bulk with the CPU accounting of the transfer (the proxy's
// when proxyPID is not 0).
func bulkCPU(ns, addr string, d time.Duration, proxyPID int) (cpuSample, error) {
	var s cpuSample
	var p0 time.Duration
	if proxyPID != 0 {
		p0, _ = procCPU(proxyPID)
	}
	s0, m0 := selfCPU(), time.Duration(0)
	m0, _ = machineCPU()
	var gbps float64
	err := testrig.DoInNetns(ns, func() error {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		var sent int64
		start := time.Now()
		for time.Since(start) < d {
			n, err := c.Write(buf)
			sent += int64(n)
			if err != nil {
				return err
			}
		}
		_ = c.(*net.TCPConn).CloseWrite()
		ack := make([]byte, 2)
		if _, err := io.ReadFull(c, ack); err != nil {
			return fmt.Errorf("no ack: %w", err)
		}
		gbps = float64(sent*8) / time.Since(start).Seconds() / 1e9
		s.bytes = float64(sent)
		return nil
	})
	s.gbps = gbps
	s.self = selfCPU() - s0
	m1, _ := machineCPU()
	s.all = m1 - m0
	if proxyPID != 0 {
		p1, _ := procCPU(proxyPID)
		s.proxy = p1 - p0
	}
	return s, err
}

// pingPong measures n round trips of a 64-byte request on one connection.
func pingPong(ns, addr string, n int) ([]time.Duration, error) {
	var lat []time.Duration
	err := testrig.DoInNetns(ns, func() error {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		req, resp := make([]byte, 64), make([]byte, 64)
		for i := 0; i < n; i++ {
			start := time.Now()
			if _, err := c.Write(req); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, resp); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
		}
		return nil
	})
	return lat, err
}

// connectRequest measures n requests that each open a new connection,
// send 64 bytes, read the answer and close.
func connectRequest(ns, addr string, n int) ([]time.Duration, error) {
	var lat []time.Duration
	err := testrig.DoInNetns(ns, func() error {
		req, resp := make([]byte, 64), make([]byte, 64)
		for i := 0; i < n; i++ {
			start := time.Now()
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				return err
			}
			if _, err := c.Write(req); err != nil {
				c.Close()
				return err
			}
			if _, err := io.ReadFull(c, resp); err != nil {
				c.Close()
				return err
			}
			c.Close()
			lat = append(lat, time.Since(start))
		}
		return nil
	})
	return lat, err
}

func pct(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1e3) }

func TestUserspaceBench(t *testing.T) {
	if os.Getenv("KPROXY_BENCH") != "1" {
		t.Skip("set KPROXY_BENCH=1 to run the benchmark")
	}
	testrig.RequireRoot(t)
	testrig.CheckRootNetnsUnchanged(t)
	// The proxy is this test binary: its figures describe the tree it was
	// built from, so -write refuses a tree with uncommitted changes.
	prov := report.ReadProvenance()
	if *write && prov.Uncommitted() {
		t.Fatalf("-write: the tree is %s; commit first, so the figures name the commit they describe", prov)
	}
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 2})
	client, server := topo.Node(1).Pods[0].Netns, topo.Node(1).Pods[1].Netns
	reuseTimeWait(t, client, topo.Node(1).Netns)
	startServers(t, server)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	proxy := testrig.StartProcess(t, topo.Node(1).Netns, "env", envProxy+"=1", self, "-test.run=^$")
	paths := []benchPath{
		{name: pathDirect, bulk: serverIP + ":9000", echo: serverIP + ":9001"},
		{name: pathKproxy, bulk: "10.96.0.100:9000", echo: "10.96.0.101:9001", proc: proxy, readyLog: readyLine},
	}
	if hap := startHAProxy(t, topo.Node(1).Netns); hap != nil {
		paths = append(paths, benchPath{name: pathHAProxy, bulk: haproxyBulk, echo: haproxyEcho, proc: hap})
	}
	for _, p := range paths {
		waitReady(t, client, p)
	}
	scenarios := []scenario{{name: scenarioShared}}
	if len(allowedCPUs()) >= 2 {
		scenarios = append(scenarios, scenario{name: scenarioPinned, pin: true})
	}
	t.Cleanup(func() { _ = setAffinity(os.Getpid()) })

	res := newResults()
	const rounds = 3
	bulkD := 3 * time.Second
	// Interleave scenarios and paths, so that all see the same machine
	// conditions.
	for r := 0; r < rounds; r++ {
		for _, sc := range scenarios {
			if err := sc.apply(paths); err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				g, err := bulkCPU(client, p.bulk, bulkD, p.pid())
				if err != nil {
					t.Fatalf("%s/%s bulk: %v", sc.name, p.name, err)
				}
				l, err := pingPong(client, p.echo, 10000)
				if err != nil {
					t.Fatalf("%s/%s ping-pong: %v", sc.name, p.name, err)
				}
				c, err := connectRequest(client, p.echo, 2000)
				if err != nil {
					t.Fatalf("%s/%s connect+request: %v", sc.name, p.name, err)
				}
				res.add(sc.name, p.name, g, l, c)
				t.Logf("round %d %-6s %-9s %.2f Gbit/s", r, sc.name, p.name, g.gbps)
			}
		}
	}
	text := res.report(scenarios, paths, rounds, bulkD, prov)
	t.Log("\n" + text)
	if *write {
		goMod, err := testrig.RepoFile("go.mod") // the top-level README is beside it
		if err != nil {
			t.Fatal(err)
		}
		// The README first: a README without the markers fails the run
		// before RESULTS.md changes.
		readme := filepath.Join(filepath.Dir(goMod), "README.md")
		if err := writeBlock(readme, readmeBeginMark, readmeEndMark, res.summary(pathNames(paths), provLabel(prov))); err != nil {
			t.Fatal(err)
		}
		if err := writeBlock("RESULTS.md", beginMark, endMark, text); err != nil {
			t.Fatal(err)
		}
	}
}

// reuseTimeWait lets the namespaces that open connections (the client,
// and the node where the proxies dial) reuse ports in TIME_WAIT. The run
// opens tens of thousands of short connections within a minute; without
// it the ephemeral port search slows down as the range fills with
// TIME_WAIT sockets and connect latency grows to milliseconds, for every
// path alike, which is not what is being measured.
func reuseTimeWait(t *testing.T, namespaces ...string) {
	for _, ns := range namespaces {
		if err := testrig.SetSysctl(ns, "net.ipv4.tcp_tw_reuse", "1"); err != nil {
			t.Fatal(err)
		}
	}
}

// readyLine is what the kproxy proxy process prints once its rules are in.
const readyLine = "proxy ready"

// waitReady waits until path p answers an echo. For a proxy with a
// readyLog it first waits for the process to report its rules in place: a probe sent before that is
// routed past the Service address, and its conntrack entry (un-NATed,
// 2 minutes in SYN_SENT) would later catch any connection of the client
// that reuses the same source port, failing it with "no route to host".
func waitReady(t *testing.T, client string, p benchPath) {
	deadline := time.Now().Add(20 * time.Second)
	notReady := func(what string) {
		tail := ""
		if p.proc != nil {
			tail = p.proc.Tail(20)
		}
		t.Fatalf("%s not ready (%s):\n%s", p.name, what, tail)
	}
	for p.readyLog != "" && !strings.Contains(p.proc.Log(), p.readyLog) {
		if time.Now().After(deadline) {
			notReady("no " + p.readyLog + " line")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		if _, err := pingPong(client, p.echo, 1); err == nil {
			return
		}
		if time.Now().After(deadline) {
			notReady("no echo")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Markers around the generated part of RESULTS.md; the text outside them
// (the analysis) is kept.
const (
	beginMark = "<!-- generated by TestUserspaceBench: begin -->\n"
	endMark   = "<!-- generated by TestUserspaceBench: end -->\n"
)

// writeBlock replaces the text between begin and end in path with gen;
// the rest of the file is kept.
func writeBlock(path, begin, end, gen string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, rest, ok := strings.Cut(string(old), begin)
	_, after, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		return fmt.Errorf("%s: no %q … %q block to replace", path, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	return os.WriteFile(path, []byte(before+begin+gen+end+after), 0o644)
}

func pathNames(paths []benchPath) []string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.name
	}
	return names
}
