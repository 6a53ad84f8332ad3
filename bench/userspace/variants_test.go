package userspacebench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

// TestBulkVariants compares proxy process variants on bulk TCP only, each
// side by side with direct in the same round, with CPU accounting. A
// variant is "name=VAR=value,VAR2=value" (environment of the proxy
// process); variants are separated by ";":
//
//	KPROXY_BENCH=1 KPROXY_BENCH_VARIANTS='base=;gmp1=GOMAXPROCS=1' go test ./bench/userspace/ -run TestBulkVariants -v
func TestBulkVariants(t *testing.T) {
	spec := os.Getenv("KPROXY_BENCH_VARIANTS")
	if os.Getenv("KPROXY_BENCH") != "1" || spec == "" {
		t.Skip("set KPROXY_BENCH=1 and KPROXY_BENCH_VARIANTS to run")
	}
	testrig.RequireRoot(t)
	topo := testrig.NewTopology(t, testrig.TopologyOptions{Nodes: 1, PodsPerNode: 2})
	client, server := topo.Node(1).Pods[0].Netns, topo.Node(1).Pods[1].Netns
	startServers(t, server)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type variant struct {
		name string
		env  []string
	}
	var vs []variant
	for _, v := range strings.Split(spec, ";") {
		name, env, _ := strings.Cut(v, "=")
		var e []string
		if env != "" {
			e = strings.Split(env, ",")
		}
		vs = append(vs, variant{name, e})
	}
	rounds, d := envInt("KPROXY_BENCH_ROUNDS", 3), 3*time.Second
	res := map[string][]cpuSample{}
	for r := 0; r < rounds; r++ {
		for _, v := range vs {
			args := append(append([]string{"env", envProxy + "=1"}, v.env...), self, "-test.run=^$")
			proxy := testrig.StartProcess(t, topo.Node(1).Netns, args...)
			waitReady(t, client, benchPath{name: v.name, echo: "10.96.0.101:9001", proc: proxy, readyLog: readyLine})
			stop := perfRecord(t, r, "direct-"+v.name)
			dir, err := bulkCPU(client, serverIP+":9000", d, 0)
			stop()
			if err != nil {
				t.Fatal(err)
			}
			stop = perfRecord(t, r, v.name)
			stopStat := perfStat(t, r, v.name, proxy.PID())
			px, err := bulkCPU(client, "10.96.0.100:9000", d, proxy.PID())
			stopStat()
			stop()
			if err != nil {
				t.Fatal(err)
			}
			if err := proxy.Stop(); err != nil {
				t.Fatal(err)
			}
			res["direct/"+v.name] = append(res["direct/"+v.name], dir)
			res[v.name] = append(res[v.name], px)
			t.Logf("round %d %-12s direct %.2f Gbit/s (bench %.2f, machine %.2f CPU-s/GB) proxied %.2f Gbit/s = %.0f%% (proxy %.2f, bench %.2f, machine %.2f CPU-s/GB)",
				r, v.name, dir.gbps, perGB(dir.self, dir.bytes), perGB(dir.all, dir.bytes),
				px.gbps, 100*px.gbps/dir.gbps, perGB(px.proxy, px.bytes), perGB(px.self, px.bytes), perGB(px.all, px.bytes))
		}
	}
	med := func(s []cpuSample, f func(cpuSample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| variant | direct Gbit/s | proxied Gbit/s | ratio | proxy CPU-s/GB | bench (client+server) CPU-s/GB | machine CPU-s/GB direct → proxied |\n|---|---|---|---|---|---|---|\n")
	for _, v := range vs {
		dir, px := res["direct/"+v.name], res[v.name]
		ratio := make([]cpuSample, len(px))
		for i := range px {
			ratio[i] = cpuSample{gbps: px[i].gbps / dir[i].gbps}
		}
		g := func(s cpuSample) float64 { return s.gbps }
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.0f%% | %.3f | %.3f | %.3f → %.3f |\n", v.name, med(dir, g), med(px, g), 100*med(ratio, g),
			med(px, func(s cpuSample) float64 { return perGB(s.proxy, s.bytes) }),
			med(px, func(s cpuSample) float64 { return perGB(s.self, s.bytes) }),
			med(dir, func(s cpuSample) float64 { return perGB(s.all, s.bytes) }),
			med(px, func(s cpuSample) float64 { return perGB(s.all, s.bytes) }))
	}
	t.Log("\n" + b.String())
}

// perfRecord samples every CPU (perf record -e cpu-clock -a -g) during the
// first round when KPROXY_BENCH_PERF names a directory; stop waits for it.
func perfRecord(t *testing.T, round int, name string) (stop func()) {
	dir := os.Getenv("KPROXY_BENCH_PERF")
	if dir == "" || round != 0 {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-a", "-g", "-o", filepath.Join(dir, name+".data"), "--", "sleep", "2")
	if err := cmd.Start(); err != nil {
		t.Logf("perf: %v", err)
		return func() {}
	}
	return func() { _ = cmd.Wait() }
}

// perfStat counts the proxy's system calls (splice, epoll, futex) and
// context switches for 2 s of the first round when KPROXY_BENCH_PERF
// names a directory.
func perfStat(t *testing.T, round int, name string, pid int) (stop func()) {
	dir := os.Getenv("KPROXY_BENCH_PERF")
	if dir == "" || round != 0 {
		return func() {}
	}
	cmd := exec.Command("perf", "stat", "-o", filepath.Join(dir, name+".stat"), "-p", strconv.Itoa(pid),
		"-e", "syscalls:sys_enter_splice,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,context-switches,cpu-clock", "--", "sleep", "2")
	if err := cmd.Start(); err != nil {
		t.Logf("perf stat: %v", err)
		return func() {}
	}
	return func() { _ = cmd.Wait() }
}
