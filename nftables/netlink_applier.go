package nftables

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	gnft "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// netlinkApplier sends a partial sync's batch over one netlink socket
// kept for the process's life. A one-Service sync at 10,000 Services by
// `nft -f` spends most of its time in nft itself: starting, loading its
// cache (dumps of the table's chains and sets) and, at exit, waiting in
// close() for the kernel to release the transaction; over a kept socket
// only the kernel's commit remains (README, "Partial syncs over netlink").
type netlinkApplier struct {
	mu   sync.Mutex
	conn *gnft.Conn    // nil until the first batch, and after a failure
	sock *netlink.Conn // conn's socket, for deadlines
	// applied counts the batches the kernel took (tests check it moves).
	applied int
	// failures counts the batches that failed in a row; at
	// maxNetlinkFailures the applier turns itself off and every sync goes
	// by nft -f (a kernel refusing what nft accepts would otherwise fail
	// every partial sync).
	failures int
}

const (
	maxNetlinkFailures = 3
	// netlinkTimeout bounds a batch's wait for the kernel's answers (the
	// library waits for one per message; a kernel that sends a single
	// error for the batch would leave it waiting).
	netlinkTimeout = 10 * time.Second
	// netlinkReadBuffer holds a batch's answers: an ack per message and,
	// for each rule, its echo (google/nftables v0.3.0 asks for echoes of
	// added rules and reads them before the rule's ack; a later version
	// may answer differently: TestKernelLargePartialSyncByNetlink).
	netlinkReadBuffer = 4 << 20
)

// enabled tells whether batches may still be sent.
func (a *netlinkApplier) enabled() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failures < maxNetlinkFailures
}

// apply sends b as one transaction, all or nothing. The socket is opened
// in the calling thread's network namespace; after any failure it is
// closed (unread answers may be left in it) and the next batch opens one.
func (a *netlinkApplier) apply(ctx context.Context, b *netlinkBatch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.send(ctx, b)
	if err == nil {
		a.applied++
		a.failures = 0
		return nil
	}
	a.close()
	if ctx.Err() != nil { // stopping: not the kernel's fault
		return err
	}
	if a.failures++; a.failures == maxNetlinkFailures {
		klog.ErrorS(err, "Partial syncs by netlink failed too often in a row; sending them by nft -f from now on",
			"failures", a.failures)
	}
	return err
}

func (a *netlinkApplier) send(ctx context.Context, b *netlinkBatch) error {
	if a.conn == nil {
		if err := a.open(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(netlinkTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := a.sock.SetDeadline(deadline); err != nil {
		return err
	}
	sock := a.sock
	stop := context.AfterFunc(ctx, func() { _ = sock.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for _, op := range b.ops {
		if err := op(a.conn); err != nil {
			return err // the buffered messages go with the socket
		}
	}
	err := a.conn.Flush()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The library joins one timeout per unanswered message.
		return fmt.Errorf("no answer from the kernel before %s (or the sync was stopped)", deadline.Format(time.RFC3339Nano))
	}
	return err
}

// open dials the lasting socket, its receive buffer large enough for a
// batch's answers (nft enlarges its own the same way).
func (a *netlinkApplier) open() error {
	var sock *netlink.Conn
	conn, err := gnft.New(gnft.AsLasting(), gnft.WithSockOptions(func(c *netlink.Conn) error {
		sock = c
		// No error from here: the library would not close the socket.
		if err := forceReadBuffer(c, netlinkReadBuffer); err != nil {
			klog.V(2).InfoS("Could not enlarge the netlink receive buffer", "err", err)
		}
		return nil
	}))
	if err != nil {
		return fmt.Errorf("open netlink socket: %w", err)
	}
	a.conn, a.sock = conn, sock
	return nil
}

// forceReadBuffer sets the socket's receive buffer past net.core.rmem_max
// (SO_RCVBUFFORCE, with CAP_NET_ADMIN), else as large as that allows.
func forceReadBuffer(c *netlink.Conn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		if errors.Is(sockErr, syscall.EPERM) {
			klog.V(2).InfoS("No CAP_NET_ADMIN for a large netlink receive buffer; net.core.rmem_max limits it")
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		}
	}); err != nil {
		return err
	}
	return sockErr
}

// close closes the socket, if open.
func (a *netlinkApplier) close() {
	if a.conn != nil {
		_ = a.conn.CloseLasting()
		a.conn, a.sock = nil, nil
	}
}

// Close closes the socket (tests: an open socket keeps its namespace).
func (a *netlinkApplier) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.close()
}
