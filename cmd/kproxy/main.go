// Command kproxy is a drop-in replacement for kube-proxy: it takes
// kube-proxy's flags and KubeProxyConfiguration file, serves the same
// /healthz, /livez and /metrics, and programs Services with the iptables,
// ipvs or userspace mode (--proxy-mode).
//
//	kproxy [flags]                 run the proxy
//	kproxy --cleanup               remove everything kproxy created, exit
//	kproxy render -f objects.yaml  print the rules a full sync would write
package main

import "os"

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
