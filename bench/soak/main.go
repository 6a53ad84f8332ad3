// Command soak is kproxy's soak run: kproxy in a testrig node against a
// real control plane, steady churn of Services and endpoints at a fixed
// rate, and continuous traffic probes through the proxy. It reports probe
// failures, kproxy's RSS and goroutines (scraped from its /metrics) at the
// start and the end. Run it as root from the repository root:
//
//	go run ./bench/soak -duration 10m -rate 5
//
// The figures go into RELIABILITY.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kproxy/kproxy/internal/testrig"
)

func main() {
	var c config
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long to churn and probe")
	flag.Float64Var(&c.rate, "rate", 5, "API changes per second (Service create/delete, endpoint moves)")
	flag.IntVar(&c.stable, "stable", 20, "Services that never change; every probe to them must succeed")
	flag.IntVar(&c.churned, "churned", 100, "Services that are created, changed and deleted")
	flag.StringVar(&c.mode, "mode", "iptables", "kproxy --proxy-mode")
	flag.StringVar(&c.kproxy, "kproxy", "", "kproxy binary (default: go build ./cmd/kproxy)")
	flag.Parse()

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
	if res.failed() {
		os.Exit(1)
	}
}
