package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"
)

// resolve looks NAME up at -server (a DNS server's address, e.g. a ClusterIP)
// and prints the addresses, one line; it fails when there is no answer.
func resolve(args []string) error {
	fs := flag.NewFlagSet("resolve", flag.ExitOnError)
	server := fs.String("server", "10.96.0.10:53", "DNS server host:port")
	timeout := fs.Duration("timeout", 5*time.Second, "for the whole lookup")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("resolve needs one name")
	}
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *server)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	addrs, err := r.LookupHost(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(addrs, " "))
	return nil
}
