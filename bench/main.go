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
	ns := flag.String("n", "1000,5000,10000", "Service counts, comma separated, grown in this order")
	ms := flag.String("m", "2,10", "endpoints per Service, comma separated")
	workloads := flag.String("workloads", "", "workloads NxM, comma separated, instead of -n × -m (\"issue\": "+harness.IssueWorkloads+")")
	proxies := flag.String("proxies", "", "proxies to run, comma separated (default all: upstream-iptables, upstream-nftables, kproxy-iptables, kproxy-ipvs, kproxy-userspace)")
	out := flag.String("out", "", "results directory (default bench/results/<date>)")
	readme := flag.Bool("update-readme", false, "put the results table and plots into bench/README.md")
	render := flag.String("render", "", "only re-render results.md, machine.md and the plots of earlier runs from <dir>/results.json (comma-separated dirs; with -update-readme all of them go into the README)")
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

	var err error
	if cfg.Ns, err = ints(*ns); err != nil {
		return fail(err)
	}
	if cfg.Ms, err = ints(*ms); err != nil {
		return fail(err)
	}
	if *workloads == "issue" {
		*workloads = harness.IssueWorkloads
	}
	if *workloads != "" {
		if cfg.Steps, err = harness.ParseWorkloads(*workloads); err != nil {
			return fail(err)
		}
	}
	if *proxies != "" {
		cfg.Proxies = strings.Split(*proxies, ",")
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return fail(err)
	}
	if *render != "" {
		return rerender(*render, filepath.Join(root, "bench", "README.md"), *readme)
	}
	cfg.Out = *out
	if cfg.Out == "" {
		cfg.Out = filepath.Join(root, "bench", "results", time.Now().Format("2006-01-02"))
	}
	cfg.Command = harness.CommandLine(root, os.Args[1:])
	cfg.Log = os.Stderr

	// The scope owns every namespace and process; it is closed on return
	// and on SIGINT/SIGTERM, so nothing is left behind.
	s := &testrig.MainScope{}
	defer s.Close()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	res, err := harness.Run(ctx, s, cfg)
	if res != nil && len(res.Rows) > 0 {
		fmt.Println(res.Markdown())
		if *readme {
			if rerr := harness.UpdateReadme(filepath.Join(root, "bench", "README.md"), harness.RunDir{Results: res, Dir: cfg.Out}); rerr != nil {
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
func rerender(dirs, readme string, updateReadme bool) int {
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
		if err := harness.UpdateReadme(readme, runs...); err != nil {
			return fail(err)
		}
	}
	return 0
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
