package nftables

import (
	"fmt"
	"sync"

	gnft "github.com/google/nftables"
)

// netlinkApplier sends a partial sync's batch over one netlink socket
// kept for the process's life. A one-Service sync at 10,000 Services by
// `nft -f` spends most of its time in nft itself: starting, loading its
// cache (dumps of the table's chains and sets) and, at exit, waiting in
// close() for the kernel to release the transaction; over a kept socket
// only the kernel's commit remains (README, "Partial syncs over netlink").
type netlinkApplier struct {
	mu   sync.Mutex
	conn *gnft.Conn // nil until the first batch, and after a failure
	// applied counts the batches the kernel took (tests check it moves).
	applied int
}

// apply sends b as one transaction, all or nothing. The socket is opened
// in the calling thread's network namespace; after any failure it is
// closed (unread answers may be left in it) and the next batch opens one.
func (a *netlinkApplier) apply(b *netlinkBatch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == nil {
		conn, err := gnft.New(gnft.AsLasting())
		if err != nil {
			return fmt.Errorf("open netlink socket: %w", err)
		}
		a.conn = conn
	}
	for _, op := range b.ops {
		if err := op(a.conn); err != nil {
			a.reset() // drops the messages buffered so far with the socket
			return err
		}
	}
	if err := a.conn.Flush(); err != nil {
		a.reset()
		return err
	}
	a.applied++
	return nil
}

func (a *netlinkApplier) reset() {
	_ = a.conn.CloseLasting()
	a.conn = nil
}
