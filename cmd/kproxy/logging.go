package main

import (
	"strings"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// routeLogrus sends the logrus output of libraries (github.com/moby/ipvs
// logs through it, e.g. "modprobe ip_vs failed" on every host without
// IPVS, even when only --cleanup probes for it) to klog at -v=2, so that
// kproxy has one log format and the default level stays quiet.
func routeLogrus() {
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true, DisableQuote: true})
	logrus.SetOutput(logrusWriter{})
}

type logrusWriter struct{}

func (logrusWriter) Write(p []byte) (int, error) {
	klog.V(2).InfoS("Library log", "logger", "logrus", "line", strings.TrimSpace(string(p)))
	return len(p), nil
}
