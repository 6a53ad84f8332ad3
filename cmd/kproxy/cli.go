package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// run dispatches the command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "render" {
		return runRender(args[1:], stdin, stdout, stderr)
	}
	o, err := parseOptions(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "kproxy: %v\n", err)
		return 2
	}
	defer klog.Flush()
	routeLogrus()
	switch {
	case o.Version:
		fmt.Fprintf(stdout, "kproxy %s\n", version())
		return 0
	case o.WriteConfigTo != "":
		if err := writeConfig(o.Config, o.WriteConfigTo); err != nil {
			fmt.Fprintf(stderr, "kproxy: %v\n", err)
			return 1
		}
		return 0
	case o.Cleanup:
		if err := runCleanup(context.Background(), o.Config); err != nil {
			klog.ErrorS(err, "Cleanup failed")
			return 1
		}
		return 0
	}
	if err := runProxy(o); err != nil {
		klog.ErrorS(err, "kproxy failed")
		return 1
	}
	return 0
}

// versionString is set at link time (-ldflags "-X main.versionString=v1.2.3").
var versionString = ""

func version() string {
	if versionString != "" {
		return versionString
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func writeConfig(c *Config, path string) error {
	data, err := encodeConfig(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	klog.InfoS("Wrote configuration", "file", path)
	return nil
}
