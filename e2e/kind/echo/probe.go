package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// Summary is what probe and load print, as JSON on one line.
type Summary struct {
	Sent     int            `json:"sent"`
	Answered int            `json:"answered"`
	Failed   int            `json:"failed"`
	By       map[string]int `json:"by"`     // answering server name → count
	Seen     map[string]int `json:"seen"`   // client IP the servers saw → count
	Errors   map[string]int `json:"errors"` // error text → count
	// LongestOutage is the longest time from a failed request to the next
	// answered one (or to the end), in seconds.
	LongestOutage float64 `json:"longest_outage"`
	outageSince   time.Time
}

// probe sends requests one after another: -count of them, or (load) for
// -duration, -interval apart; each is a new connection (TCP) or socket (UDP).
func probe(args []string, load bool) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	proto := fs.String("proto", "tcp", "tcp or udp")
	addr := fs.String("addr", "", "host:port")
	count := fs.Int("count", 10, "requests (probe)")
	duration := fs.Duration("duration", 0, "how long (load); 0: until standard input closes")
	interval := fs.Duration("interval", 10*time.Millisecond, "pause between requests")
	timeout := fs.Duration("timeout", 2*time.Second, "per request")
	_ = fs.Parse(args)
	if *addr == "" {
		return fmt.Errorf("-addr is required")
	}
	s := Summary{By: map[string]int{}, Seen: map[string]int{}, Errors: map[string]int{}}
	stop := stopAfter(*duration)
	for i := 0; ; i++ {
		if (!load && i >= *count) || (load && stopped(stop)) {
			break
		}
		s.record(request(*proto, *addr, *timeout))
		time.Sleep(*interval)
	}
	s.endOutage()
	return json.NewEncoder(os.Stdout).Encode(s)
}

// stopAfter is closed after d, or (d == 0) when standard input closes: the
// test that runs a load through `kubectl exec -i` stops it that way and still
// gets the summary.
func stopAfter(d time.Duration) <-chan struct{} {
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		if d > 0 {
			time.Sleep(d)
			return
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
	}()
	return stop
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func (s *Summary) record(line string, err error) {
	s.Sent++
	if err != nil {
		s.Failed++
		s.Errors[errorText(err)]++
		if s.outageSince.IsZero() {
			s.outageSince = time.Now()
		}
		return
	}
	s.endOutage()
	s.Answered++
	name, seen, _ := strings.Cut(strings.TrimSpace(line), " ")
	s.By[name]++
	if host, _, err := net.SplitHostPort(seen); err == nil {
		s.Seen[host]++
	}
}

func (s *Summary) endOutage() {
	if s.outageSince.IsZero() {
		return
	}
	s.LongestOutage = max(s.LongestOutage, time.Since(s.outageSince).Seconds())
	s.outageSince = time.Time{}
}

// errorText drops the addresses from an error, so equal failures count together.
func errorText(err error) string {
	text := err.Error()
	if i := strings.LastIndex(text, ": "); i >= 0 {
		return text[i+2:]
	}
	return text
}

func request(proto, addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout(proto, addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if proto == "udp" {
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return "", err
		}
	}
	return bufio.NewReader(c).ReadString('\n')
}
