package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"time"

	"k8s.io/klog/v2"
)

// errConfigChanged stops the daemon when its --config file changes: like
// kube-proxy, kproxy exits so that the DaemonSet restarts it with the new
// configuration instead of running with half of it applied.
var errConfigChanged = errors.New("the --config file changed; exiting so that it is reloaded")

// configPollInterval is how often the --config file is read. Polling the
// content (rather than inotify) also sees ConfigMap volume updates, which
// swap a symlink rather than write the file.
const configPollInterval = 5 * time.Second

// watchConfigFile calls changed once, when the file's content differs from
// what it was when the watch started and reads the same on two polls in a
// row: a file that cannot be read (a ConfigMap update may briefly remove
// it) or is caught half-written is not a change.
func watchConfigFile(ctx context.Context, path string, every time.Duration, changed func()) {
	initial, err := os.ReadFile(path)
	if err != nil {
		klog.ErrorS(err, "Cannot watch the --config file", "path", path)
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last []byte // the previous poll's differing content, if any
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := os.ReadFile(path)
		if err != nil || bytes.Equal(now, initial) {
			last = nil
			continue
		}
		if !bytes.Equal(now, last) {
			last = now
			continue
		}
		klog.InfoS("The --config file changed", "path", path)
		changed()
		return
	}
}
