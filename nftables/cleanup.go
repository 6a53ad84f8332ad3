package nftables

import (
	"context"
	"fmt"

	"sigs.k8s.io/knftables"
)

// Cleanup removes the table kproxy's nftables mode (and kube-proxy's)
// writes for opts.Family, in the current network namespace (or opts.NFT's).
// It works without a running Proxier and is idempotent.
func Cleanup(ctx context.Context, opts Options) error {
	opts, err := opts.normalized()
	if err != nil {
		return err
	}
	nft, err := opts.nft()
	if err != nil {
		return err
	}
	return cleanup(ctx, nft)
}

// cleanup deletes the table; adding it first makes the delete succeed when
// there is none.
func cleanup(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", tableName, err)
	}
	return nil
}

// HasLeftovers reports whether the table exists with any chain in it
// (netlink lists a family's chains and cannot tell an empty table from a
// missing one; kproxy's and kube-proxy's tables always have chains).
func HasLeftovers(ctx context.Context, opts Options) (bool, error) {
	opts, err := opts.normalized()
	if err != nil {
		return false, err
	}
	nft, err := opts.nft()
	if err != nil {
		return false, err
	}
	chains, err := nft.List(ctx, "chains")
	switch {
	case knftables.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("nftables: list table %s: %w", tableName, err)
	}
	return len(chains) > 0, nil
}
