package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/klog/v2"

	"github.com/kproxy/kproxy/proxier/healthcheck"
)

// serverRetryInterval is how long serveRetrying waits before listening
// again, as kube-proxy's healthz and metrics servers do.
const serverRetryInterval = 5 * time.Second

// serveRetrying serves h on addr until ctx is done. When it cannot listen
// (another proxy still holds the port during a take-over, say) or the
// server fails, it sends the error to errc when hardFail is set, else logs
// it and tries again every retry, so the probes answer once the port is free.
func serveRetrying(ctx context.Context, what, addr string, h http.Handler, hardFail bool, errc chan<- error, retry time.Duration) {
	for ctx.Err() == nil {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			err = healthcheck.ServeListener(ctx, l, h, what)
		}
		if err == nil {
			return
		}
		err = fmt.Errorf("%s server on %s: %w", what, addr, err)
		if hardFail {
			errc <- err
			return
		}
		klog.ErrorS(err, "Server failed; retrying (see --bind-address-hard-fail)", "retryIn", retry)
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}
