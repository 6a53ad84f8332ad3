package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatchConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("mode: iptables\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 1)
	go watchConfigFile(ctx, path, time.Millisecond, func() { changed <- struct{}{} })

	// Replacing the file with the same content (atomically, as a ConfigMap
	// volume update does), or a moment without the file, is no change.
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(path+".new", []byte("mode: iptables\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	select {
	case <-changed:
		t.Fatal("reported a change although the content is the same")
	default:
	}
	if err := os.WriteFile(path, []byte("mode: ipvs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("a changed file was not reported")
	}
}
