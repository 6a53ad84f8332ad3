package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// A port held by another process (kube-proxy during a take-over) must not
// leave kproxy without its health server: once the port is free it serves.
func TestServeRetryingListensOncePortIsFree(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := busy.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() { serveRetrying(ctx, "healthz", addr, h, false, errc, 50*time.Millisecond); close(done) }()

	time.Sleep(200 * time.Millisecond) // several failed attempts
	busy.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server on %s after the port was freed: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serveRetrying did not return after cancel")
	}
	select {
	case err := <-errc:
		t.Fatalf("not hard-failing, yet reported %v", err)
	default:
	}
}

func TestServeRetryingHardFailReports(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	errc := make(chan error, 1)
	serveRetrying(context.Background(), "metrics", busy.Addr().String(), http.NotFoundHandler(), true, errc, time.Millisecond)
	select {
	case err := <-errc:
		t.Logf("reported: %v", err)
	default:
		t.Fatal("hard fail: the listen error was not reported")
	}
}
