package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ---- txn-put ----

type txnPutOptions struct {
	putOptions
	txnOps int
}

func newBenchTxnPutCmd(f *benchFlags) *cobra.Command {
	var o txnPutOptions
	cmd := &cobra.Command{
		Use:   "txn-put",
		Short: "Benchmark txns of --txn-ops puts each",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if o.txnOps < 1 {
				return usagef("bench txn-put: --txn-ops must be at least 1, got %d", o.txnOps)
			}
			val := benchValue(o.valSize)
			op := func(ctx context.Context, c *clientv3.Client, seq uint64) error {
				ops := make([]clientv3.Op, o.txnOps)
				for i := range ops {
					// Distinct keys per txn: a txn may not write one key twice.
					ops[i] = clientv3.OpPut(o.putKey(seq*uint64(o.txnOps)+uint64(i)), val)
				}
				_, err := c.Txn(ctx).Then(ops...).Commit()
				return err
			}
			params := map[string]any{
				"txn_ops": o.txnOps, "key_size": o.keySize, "val_size": o.valSize, "key_space_size": o.keySpaceSize,
			}
			return runBench(cmd, f, "txn-put", o.total, params, op)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.total, "total", 10000, "total number of txns")
	fs.IntVar(&o.txnOps, "txn-ops", 1, "puts per txn")
	fs.IntVar(&o.keySize, "key-size", 8, "key size in bytes")
	fs.IntVar(&o.valSize, "val-size", 8, "value size in bytes")
	fs.IntVar(&o.keySpaceSize, "key-space-size", 1<<20, "number of distinct keys")
	// Keys within one txn must differ, so they are always sequential.
	o.sequential = true
	return cmd
}

// ---- lease-keepalive ----

func newBenchLeaseKeepaliveCmd(f *benchFlags) *cobra.Command {
	var total int
	cmd := &cobra.Command{
		Use:   "lease-keepalive",
		Short: "Benchmark lease keepalives (one lease per worker, renewed with KeepAliveOnce)",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if total < 1 {
				return usagef("bench lease-keepalive: --total must be at least 1, got %d", total)
			}
			// Each client connection gets one lease, granted on first use.
			var mu sync.Mutex
			leases := map[*clientv3.Client]clientv3.LeaseID{}
			op := func(ctx context.Context, c *clientv3.Client, _ uint64) error {
				mu.Lock()
				id, ok := leases[c]
				mu.Unlock()
				if !ok {
					g, err := c.Grant(ctx, 60)
					if err != nil {
						return fmt.Errorf("grant: %w", err)
					}
					mu.Lock()
					if prev, ok := leases[c]; ok {
						id = prev // another worker won the race; ours expires unused
					} else {
						leases[c], id = g.ID, g.ID
					}
					mu.Unlock()
				}
				_, err := c.KeepAliveOnce(ctx, id)
				return err
			}
			return runBench(cmd, f, "lease-keepalive", total, map[string]any{}, op)
		},
	}
	cmd.Flags().IntVar(&total, "total", 10000, "total number of keepalive requests")
	return cmd
}
