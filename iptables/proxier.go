package iptables

import (
	"context"
	"errors"
	"sync"

	"github.com/kproxy/kproxy/proxier"
)

// Proxier is the iptables mode for one IP family.
type Proxier struct {
	opts   Options
	kernel Kernel

	mu sync.Mutex
	// owned are the chains (by table) of kproxy's last successful write;
	// a partial sync deletes those that are no longer rendered.
	owned map[string]map[string]bool
}

var (
	_ proxier.Proxier = (*Proxier)(nil)
	_ proxier.Canary  = (*Proxier)(nil)
)

// New validates opts and returns a Proxier. It writes nothing to the
// kernel; the first Sync (always full) does.
func New(opts Options) (*Proxier, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	k, err := opts.kernel()
	if err != nil {
		return nil, err
	}
	return &Proxier{opts: opts, kernel: k}, nil
}

// Sync implements proxier.Proxier.
func (p *Proxier) Sync(ctx context.Context, req proxier.SyncRequest) (proxier.SyncResult, error) {
	return proxier.SyncResult{}, errors.New("iptables: Sync not implemented yet")
}

// Cleanup implements proxier.Proxier.
func (p *Proxier) Cleanup(ctx context.Context) error { return cleanup(ctx, p.kernel) }

// Flushed implements proxier.Canary.
func (p *Proxier) Flushed(ctx context.Context) (bool, error) {
	return false, errors.New("iptables: Flushed not implemented yet")
}

func cleanup(ctx context.Context, k Kernel) error {
	return errors.New("iptables: Cleanup not implemented yet")
}
