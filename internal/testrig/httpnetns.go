package testrig

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTPClient is an HTTP client whose connections are opened inside
// network namespace ns, one fresh connection per request (no keep-alive),
// so that every request goes through the namespace's datapath again.
func HTTPClient(ns string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialContextInNetns(ctx, ns, network, addr)
			},
		},
	}
}

// HTTPGet fetches url from inside ns and returns the status code, body
// and header.
func HTTPGet(ns, url string, timeout time.Duration) (int, string, http.Header, error) {
	resp, err := HTTPClient(ns, timeout).Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header, err
}

// ScrapeMetrics fetches http://addr/metrics from inside ns (kproxy's
// metrics server in a node) and returns each sample as
// "name{labels}" → value.
func ScrapeMetrics(ns, addr string) (map[string]float64, error) {
	code, body, _, err := HTTPGet(ns, "http://"+addr+"/metrics", 3*time.Second)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", code)
	}
	return ParseMetrics(strings.NewReader(body))
}

// ParseMetrics reads the Prometheus text format into "name{labels}" →
// value, skipping comments and lines that are not a sample.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}
