// Command soak is kproxy's soak run: kproxy in a testrig node against a
// real control plane, steady churn of Services and endpoints at a fixed
// rate, and continuous traffic probes through the proxy. It reports probe
// failures, kproxy's RSS and goroutines (scraped every 30 s), the fewest
// Service dispatch rules seen in the node's nat table (a flush would show),
// and, with -kill-apiserver-after, how kproxy rides out and recovers from a
// kube-apiserver outage. Run it as root from the repository root:
//
//	go run ./bench/soak -duration 10m -rate 5
//	go run ./bench/soak -background 10000 -duration 30m -rate 50
//	go run ./bench/soak -background 10000 -duration 8m -rate 50 -kill-apiserver-after 3m -apiserver-down 30s
//
// The figures go into RELIABILITY.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

func main() {
	var c config
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long to churn and probe (warm-up included)")
	flag.DurationVar(&c.warmup, "warmup", time.Minute, "churn before the start sample of RSS and goroutines")
	flag.Float64Var(&c.rate, "rate", 5, "API changes per second asked (Service create/delete, endpoint moves, background slice moves)")
	flag.IntVar(&c.workers, "workers", 8, "parallel API writers of the churn")
	flag.IntVar(&c.stable, "stable", 20, "Services that never change; every probe to them must succeed (at most 30)")
	flag.IntVar(&c.churned, "churned", 100, "Services that are created, changed and deleted (1 to 150)")
	flag.IntVar(&c.background, "background", 0, "load Services (the bench's objects) created before kproxy starts; half the churn moves their endpoints")
	flag.IntVar(&c.endpoints, "endpoints", 2, "endpoints per background Service")
	flag.DurationVar(&c.killAfter, "kill-apiserver-after", 0, "SIGKILL kube-apiserver this long after the churn starts (0: never)")
	flag.DurationVar(&c.down, "apiserver-down", 30*time.Second, "how long kube-apiserver stays down")
	flag.DurationVar(&c.rulesEvery, "rules-every", 5*time.Second, "period of the nat rule count (1 s during an outage)")
	flag.StringVar(&c.mode, "mode", "iptables", "kproxy --proxy-mode")
	flag.StringVar(&c.kproxy, "kproxy", "", "kproxy binary (default: go build ./cmd/kproxy)")
	flag.IntVar(&c.kproxyV, "kproxy-v", 0, "kproxy's -v (log verbosity)")
	flag.StringVar(&c.keepLog, "keep-log", "", "copy kproxy's log to this file at the end")
	flag.Parse()
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	c.command = "go run ./bench/soak " + strings.Join(os.Args[1:], " ")

	s := &testrig.MainScope{}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	res, err := run(ctx, s, c)
	cancel()
	if err != nil {
		s.MarkFailed()
	}
	s.Close()
	if res != nil {
		fmt.Println(res.markdown(c))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if len(res.verdicts(c)) > 0 {
		os.Exit(1)
	}
}
