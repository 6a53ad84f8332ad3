package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// unreadyFile, while it exists, makes /healthz answer 503.
const unreadyFile = "/tmp/unready"

// terminating is set by SIGTERM: /healthz answers 503 from then on.
var terminating atomic.Bool

// drainOnSignal returns (ending serve) drain after SIGTERM or SIGINT.
func drainOnSignal(drain time.Duration) error {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	terminating.Store(true)
	time.Sleep(drain)
	return nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", os.Getenv("POD_NAME"), "name in every answer")
	tcpPorts := fs.String("tcp", "8080", "comma-separated TCP ports")
	udpPorts := fs.String("udp", "8080", "comma-separated UDP ports")
	httpPort := fs.Int("http", 8081, "HTTP port (/healthz, /)")
	drain := fs.Duration("drain", 5*time.Second, "how long to go on serving after SIGTERM")
	_ = fs.Parse(args)
	errs := make(chan error, 1)
	go func() { errs <- drainOnSignal(*drain) }()
	for _, p := range ports(*tcpPorts) {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			return err
		}
		go func() { errs <- serveTCP(l, *name) }()
	}
	for _, p := range ports(*udpPorts) {
		pc, err := net.ListenPacket("udp", ":"+p)
		if err != nil {
			return err
		}
		go func() { errs <- serveUDP(pc, *name) }()
	}
	go func() { errs <- serveHTTP(*httpPort, *name) }()
	return <-errs
}

func ports(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func greeting(name string, remote net.Addr) string {
	return fmt.Sprintf("%s %s\n", name, remote)
}

func serveTCP(l net.Listener, name string) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			continue
		}
		go func() {
			defer c.Close()
			if _, err := io.WriteString(c, greeting(name, c.RemoteAddr())); err == nil {
				_, _ = io.Copy(c, c)
			}
		}()
	}
}

func serveUDP(pc net.PacketConn, name string) error {
	buf := make([]byte, 64<<10)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			continue
		}
		_, _ = pc.WriteTo([]byte(greeting(name, from)), from)
	}
}

func serveHTTP(port int, name string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat(unreadyFile); err == nil || terminating.Load() {
			http.Error(w, "unready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, fmt.Sprintf("%s %s\n", name, r.RemoteAddr))
	})
	return http.ListenAndServe(":"+strconv.Itoa(port), mux)
}
