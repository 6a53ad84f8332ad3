package nftables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/knftables"
)

// mergingNFT is the real nft: knftables for listing (over netlink), and
// its own `nft -f -` for transactions, sent in the form `nft list table`
// prints (compactText). knftables writes one `add element` command per
// element, which nft turns into a netlink message each, and repeats the
// table and chain on every rule, which nft parses slower than the
// listing's blocks. (knftables' own Run keeps the largest transaction's
// text in a buffer for the interface's life; this Run keeps nothing.)
type mergingNFT struct {
	knftables.Interface
	family knftables.Family
	path   string // the nft binary
	// minBlockLines is the compactor's minRun (tests lower it).
	minBlockLines int
	// netlink sends the partial syncs it can (see netlinkApplier).
	netlink *netlinkApplier
}

var _ knftables.Interface = (*mergingNFT)(nil)

// newRealNFT is the real nft for a family's table.
func newRealNFT(fam knftables.Family) (*mergingNFT, error) {
	nft, err := knftables.New(fam, tableName, nftOptions...)
	if err != nil {
		return nil, err
	}
	path, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("find nft: %w", err)
	}
	return &mergingNFT{Interface: nft, family: fam, path: path, minBlockLines: minBlockLines,
		netlink: &netlinkApplier{}}, nil
}

// Run sends tx in one `nft -f -`, all or nothing.
func (n *mergingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	return n.send(ctx, tx)
}

// Check has nft check tx, in the form Run sends it, without applying it.
func (n *mergingNFT) Check(ctx context.Context, tx *knftables.Transaction) error {
	return n.send(ctx, tx, "--check")
}

// newTextWriter implements textSender: the Proxier's syncs write their
// operations straight into the text sendText sends.
func (n *mergingNFT) newTextWriter() *textWriter {
	return newTextWriter(n.Interface, n.family, n.minBlockLines)
}

// sendText implements textSender: w's netlink batch when it holds every
// operation, else one `nft -f -` of w's text. It returns how long the
// kernel write took (0 when w holds a refused operation).
func (n *mergingNFT) sendText(ctx context.Context, w *textWriter) (time.Duration, error) {
	text, err := w.text()
	if err != nil {
		return 0, err
	}
	if w.nl != nil && n.netlinkEnabled() {
		why := w.nl.unusable()
		if why == "" {
			return n.sendNetlink(ctx, w.nl, text)
		}
		klog.V(4).InfoS("Partial sync by nft -f, not netlink", "family", n.family, "reason", why)
	}
	return n.exec(ctx, text)
}

// netlinkEnabled implements netlinkSender.
func (n *mergingNFT) netlinkEnabled() bool { return n.netlink != nil && n.netlink.enabled() }

// sendNetlink applies b, the same operations as text.
func (n *mergingNFT) sendNetlink(ctx context.Context, b *netlinkBatch, text string) (time.Duration, error) {
	start := time.Now()
	err := n.netlink.apply(ctx, b)
	took := time.Since(start)
	if err != nil {
		return took, &sentError{msg: "netlink: " + err.Error(), sent: text}
	}
	return took, nil
}

// send runs `nft [flags] -f -` with tx's compact text.
func (n *mergingNFT) send(ctx context.Context, tx *knftables.Transaction, flags ...string) error {
	text, err := transactionText(tx)
	if err != nil {
		return err
	}
	_, err = n.exec(ctx, compactText(text, n.minBlockLines), flags...)
	return err
}

// exec runs `nft [flags] -f -` with text and returns how long nft ran.
func (n *mergingNFT) exec(ctx context.Context, text string, flags ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, n.path, append(flags, "-f", "-")...)
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return took, &sentError{msg: errorLines(stderr.String(), err), sent: text}
	}
	return took, nil
}

// errorLines are nft's error messages without the input lines and the
// markers it echoes under each (logRunFailure logs those lines).
func errorLines(stderr string, err error) string {
	var msgs []string
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, "Error: ") {
			msgs = append(msgs, strings.TrimSpace(line))
		}
	}
	if len(msgs) == 0 {
		if s := strings.TrimSpace(stderr); s != "" {
			return s
		}
		return err.Error()
	}
	return strings.Join(msgs, "\n")
}

// txErrorMark starts the comment knftables' Transaction.String ends with
// when an operation was invalid (a sticky error: nothing may be sent).
const txErrorMark = "# ERROR: "

// transactionText is tx as `nft -f` input, or tx's sticky error.
func transactionText(tx *knftables.Transaction) (string, error) {
	text := tx.String()
	i := strings.LastIndex(text, txErrorMark)
	if i >= 0 && (i == 0 || text[i-1] == '\n') && !strings.Contains(text[i:], "\n") {
		return "", fmt.Errorf("invalid transaction: %s", text[i+len(txErrorMark):])
	}
	return text, nil
}

// sentError is nft's refusal of a transaction, with the text it was sent:
// the line numbers in nft's message are that text's.
type sentError struct {
	msg  string
	sent string
}

func (e *sentError) Error() string { return e.msg }

// sentText is the text nft was sent when err is its refusal, else tx's.
func sentText(err error, tx ops) string {
	var se *sentError
	if errors.As(err, &se) {
		return se.sent
	}
	return tx.String()
}
