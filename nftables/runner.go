package nftables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"sigs.k8s.io/knftables"
)

// mergingNFT is the real nft: knftables for listing (over netlink), and
// its own `nft -f -` for transactions, sent with the element adds that
// follow each other merged into one command per set or map. knftables
// writes one `add element` command per element; nft turns each into its
// own netlink message, and a first sync at 10,000 Services × 2 spends a
// third of its `nft -f` time on 20,000 of them. One command per set, as
// `nft list table` prints it, loads as fast as the listing.
type mergingNFT struct {
	knftables.Interface
	path string // the nft binary
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
	return &mergingNFT{Interface: nft, path: path}, nil
}

// Run sends tx in one `nft -f -`, all or nothing.
func (n *mergingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	text, err := transactionText(tx)
	if err != nil {
		return err
	}
	text = mergeElementAdds(text)
	cmd := exec.CommandContext(ctx, n.path, "-f", "-")
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &sentError{msg: errorLines(stderr.String(), err), sent: text}
	}
	return nil
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
func sentText(err error, tx *knftables.Transaction) string {
	var se *sentError
	if errors.As(err, &se) {
		return se.sent
	}
	return tx.String()
}
