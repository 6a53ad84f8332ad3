package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// UserspaceFlags are the userspace mode's settings that KubeProxyConfiguration
// has no field for (kube-proxy removed the mode in v1.26): flags only.
// --udp-timeout keeps the name kube-proxy's userspace mode used.
type UserspaceFlags struct {
	UDPIdleTimeout time.Duration
	TCPIdleTimeout time.Duration
	DrainTimeout   time.Duration
}

func defaultUserspaceFlags() UserspaceFlags {
	return UserspaceFlags{UDPIdleTimeout: 30 * time.Second, TCPIdleTimeout: time.Hour}
}

func bindUserspaceFlags(fs *pflag.FlagSet, u *UserspaceFlags) {
	fs.DurationVar(&u.UDPIdleTimeout, "udp-timeout", u.UDPIdleTimeout, "Userspace mode: how long an idle UDP session is kept open. Must be greater than 0.")
	fs.DurationVar(&u.TCPIdleTimeout, "userspace-tcp-idle-timeout", u.TCPIdleTimeout, "Userspace mode: close a proxied TCP connection when neither side has sent data for this long. Must be greater than 0.")
	fs.DurationVar(&u.DrainTimeout, "userspace-drain-timeout", u.DrainTimeout, "Userspace mode: how long a TCP connection to an endpoint that left the Service may go on (0: until it closes).")
}

func (u UserspaceFlags) validate() error {
	var errs []error
	if u.UDPIdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--udp-timeout %v: must be greater than 0", u.UDPIdleTimeout))
	}
	if u.TCPIdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--userspace-tcp-idle-timeout %v: must be greater than 0", u.TCPIdleTimeout))
	}
	if u.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--userspace-drain-timeout %v: must not be negative", u.DrainTimeout))
	}
	return errors.Join(errs...)
}
