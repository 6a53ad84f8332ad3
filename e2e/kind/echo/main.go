// Command kproxy-echo is the workload and the client of the in-cluster tests
// (e2e/kind). Its image is built FROM scratch, so the same binary serves and
// probes:
//
//	kproxy-echo serve -name NAME -tcp 8080 -udp 8080 -http 8081
//	kproxy-echo probe -proto tcp -addr 10.96.0.10:53 -count 20
//	kproxy-echo load -proto tcp -addr SVC:80 -duration 60s -interval 20ms
//	kproxy-echo resolve -server 10.96.0.10:53 kubernetes.default.svc.cluster.local
//	kproxy-echo unready | ready
//
// serve answers TCP and UDP with "<name> <client-address-it-saw>\n" (TCP then
// echoes what it reads), and HTTP with the same line; HTTP /healthz is the
// readiness probe: 503 while the file /tmp/unready exists, or once serve got
// SIGTERM: it then goes on serving for -drain, so that a rolling update loses
// no request while the endpoint's removal reaches the proxies. probe and load
// print one JSON summary: how many requests were answered, by whom, which
// source address the servers saw, and the errors of the others.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "probe":
		err = probe(os.Args[2:], false)
	case "load":
		err = probe(os.Args[2:], true)
	case "resolve":
		err = resolve(os.Args[2:])
	case "unready":
		err = os.WriteFile(unreadyFile, nil, 0o644)
	case "ready":
		if err = os.Remove(unreadyFile); os.IsNotExist(err) {
			err = nil
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kproxy-echo:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kproxy-echo serve|probe|load|resolve|unready|ready [flags]")
	os.Exit(2)
}
