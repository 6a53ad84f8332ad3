// Command bench is kproxy's benchmark harness: it runs kproxy (every mode
// that can run here), upstream kube-proxy and the iptables-restore floor
// against N Services × M endpoints on a local real control plane, and writes
// a markdown table, JSON and PNG plots under bench/results/<date>/. Run it as
// root from the repository root:
//
//	go run ./bench -n 1000,5000,10000 -m 2,10
//
// See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kproxy/kproxy/bench/harness"
	"github.com/kproxy/kproxy/bench/report"
	"github.com/kproxy/kproxy/internal/testrig"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg harness.Config
	f := parseFlags(&cfg)
	if err := f.apply(&cfg); err != nil {
		return fail(err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return fail(err)
	}
	readme := readmes{bench: filepath.Join(root, "bench", "README.md"), top: filepath.Join(root, "README.md")}
	if f.render != "" {
		return rerender(f.render, readme, f.updateReadme)
	}
	cfg.Out = f.out
	if cfg.Out == "" {
		cfg.Out = filepath.Join(root, "bench", "results", time.Now().Format("2006-01-02"))
	}
	cfg.Command = harness.CommandLine(root, os.Args[1:])
	cfg.Log = os.Stderr
	return measure(cfg, readme, f.updateReadme)
}

// benchFlags are the flags that do not go straight into harness.Config.
type benchFlags struct {
	counts, endpoints, workloads, proxies string
	out, render                           string
	updateReadme                          bool
}

// parseFlags parses the command line into cfg and the returned flags.
func parseFlags(cfg *harness.Config) *benchFlags {
	f := &benchFlags{}
	flag.StringVar(&f.counts, "n", "1000,5000,10000", "Service counts, comma separated, grown in this order")
	flag.StringVar(&f.endpoints, "m", "2,10", "endpoints per Service, comma separated")
	flag.StringVar(&f.workloads, "workloads", "", "workloads NxM, comma separated, instead of -n × -m (\"issue\": "+harness.IssueWorkloads+")")
	flag.StringVar(&f.proxies, "proxies", "", "proxies to run, comma separated (default all: upstream-iptables, upstream-nftables, kproxy-iptables, kproxy-ipvs, kproxy-userspace)")
	flag.StringVar(&f.out, "out", "", "results directory (default bench/results/<date>)")
	flag.BoolVar(&f.updateReadme, "update-readme", false, "put the results tables and plots into bench/README.md, the summary and the goals into README.md")
	flag.StringVar(&f.render, "render", "", "only re-render results.md, machine.md and the plots of earlier runs from <dir>/results.json (comma-separated dirs; with -update-readme all of them go into the README)")
	flag.IntVar(&cfg.Repeats, "repeats", 3, "times every proxy is measured per workload (order alternated; tables show median and min–max)")
	flag.IntVar(&cfg.Probes, "probes", 20, "network programming probes per proxy and workload")
	flag.IntVar(&cfg.PartialReps, "partial", 5, "partial syncs per proxy and workload")
	flag.IntVar(&cfg.FirstPacketRounds, "first-packet", 1000, "first-packet connect pairs per proxy and workload")
	flag.IntVar(&cfg.Workers, "workers", 32, "parallel API requests when creating objects")
	flag.StringVar(&cfg.KproxyBinary, "kproxy", "", "kproxy binary (default: go build ./cmd/kproxy)")
	flag.StringVar(&cfg.UpstreamBinary, "kube-proxy", "", "upstream kube-proxy binary (default: the one hack/build-upstream.sh built)")
	flag.BoolVar(&cfg.AllowDirty, "allow-dirty", false, "measure kproxy built from a tree with uncommitted changes (or -kproxy); marks every table and machine.md \"uncommitted\"")
	flag.BoolVar(&cfg.HeapProfiles, "heap-profiles", false, "run every proxy with --profiling and save its heap profile at steady state into the results directory")
	flag.Parse()
	return f
}

// apply puts the workload and proxy flags into cfg.
func (f *benchFlags) apply(cfg *harness.Config) error {
	var err error
	if cfg.Ns, err = ints(f.counts); err != nil {
		return err
	}
	if cfg.Ms, err = ints(f.endpoints); err != nil {
		return err
	}
	workloads := f.workloads
	if workloads == "issue" {
		workloads = harness.IssueWorkloads
	}
	if workloads != "" {
		if cfg.Steps, err = harness.ParseWorkloads(workloads); err != nil {
			return err
		}
	}
	if f.proxies != "" {
		cfg.Proxies = strings.Split(f.proxies, ",")
	}
	return nil
}

// measure runs the benchmark and prints (and with updateReadme, puts into
// readme) what it measured, also when it fails part way.
func measure(cfg harness.Config, readme readmes, updateReadme bool) int {
	// The scope owns every namespace and process; it is closed on return
	// and on SIGINT/SIGTERM, so nothing is left behind.
	s := &testrig.MainScope{}
	defer s.Close()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	res, err := harness.Run(ctx, s, cfg)
	if res != nil && len(res.Rows) > 0 {
		fmt.Println(res.Markdown())
		if updateReadme {
			if rerr := readme.update(harness.RunDir{Results: res, Dir: cfg.Out}); rerr != nil {
				fmt.Fprintln(os.Stderr, rerr)
			}
		}
	}
	if err != nil {
		s.MarkFailed()
		return fail(err)
	}
	return 0
}

// rerender rewrites earlier runs' reports from their results.json.
func rerender(dirs string, readme readmes, updateReadme bool) int {
	var runs []harness.RunDir
	for _, dir := range strings.Split(dirs, ",") {
		res, err := report.Read(filepath.Join(dir, "results.json"))
		if err != nil {
			return fail(err)
		}
		if err := res.Write(dir); err != nil {
			return fail(err)
		}
		runs = append(runs, harness.RunDir{Results: res, Dir: dir})
	}
	if updateReadme {
		if err := readme.update(runs...); err != nil {
			return fail(err)
		}
	}
	return 0
}

// readmes are the files -update-readme writes: every table into bench's
// README, the summary and the goals into the repository's.
type readmes struct{ bench, top string }

func (r readmes) update(runs ...harness.RunDir) error {
	if err := harness.UpdateReadme(r.bench, runs...); err != nil {
		return err
	}
	return harness.UpdateTopReadme(r.top, runs...)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("bad number %q in %q", f, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "bench:", err)
	return 1
}
