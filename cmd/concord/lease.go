package main

// The lease verbs: lease grant/revoke/keepalive/ttl/list, printing exactly
// what etcdctl's simple format prints (lease ids in 16-digit hex), so scripts
// written for one work with the other.

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() { subcommands = append(subcommands, newLeaseCmd) }

// parseLeaseID reads a lease id in hex, as etcdctl does.
func parseLeaseID(s string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil {
		return 0, usagef("bad lease ID %q, expecting ID in hex", s)
	}
	return clientv3.LeaseID(id), nil
}

func writeGrant(w io.Writer, r *clientv3.LeaseGrantResponse) error {
	_, err := fmt.Fprintf(w, "lease %016x granted with TTL(%ds)\n", r.ID, r.TTL)
	return err
}

func writeRevoke(w io.Writer, id clientv3.LeaseID) error {
	_, err := fmt.Fprintf(w, "lease %016x revoked\n", id)
	return err
}

func writeKeepAlive(w io.Writer, r *clientv3.LeaseKeepAliveResponse) error {
	_, err := fmt.Fprintf(w, "lease %016x keepalived with TTL(%d)\n", r.ID, r.TTL)
	return err
}

func writeKeepAliveEnd(w io.Writer, id clientv3.LeaseID) error {
	_, err := fmt.Fprintf(w, "lease %016x expired or revoked.\n", id)
	return err
}

func writeTimeToLive(w io.Writer, r *clientv3.LeaseTimeToLiveResponse, keys bool) error {
	if r.GrantedTTL == 0 && r.TTL == -1 {
		_, err := fmt.Fprintf(w, "lease %016x already expired\n", r.ID)
		return err
	}
	line := fmt.Sprintf("lease %016x granted with TTL(%ds), remaining(%ds)", r.ID, r.GrantedTTL, r.TTL)
	if keys {
		ks := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			ks[i] = string(k)
		}
		line += fmt.Sprintf(", attached keys(%v)", ks)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func writeLeases(w io.Writer, r *clientv3.LeaseLeasesResponse) error {
	if _, err := fmt.Fprintf(w, "found %d leases\n", len(r.Leases)); err != nil {
		return err
	}
	for _, l := range r.Leases {
		if _, err := fmt.Fprintf(w, "%016x\n", l.ID); err != nil {
			return err
		}
	}
	return nil
}

// keepAliver is what the keepalive verb needs of a clientv3.Client.
type keepAliver interface {
	KeepAlive(ctx context.Context, id clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error)
	KeepAliveOnce(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error)
}

// runKeepAlive prints every renewal until ctx ends (nil: interrupted) or the
// lease is gone (clientv3 closes the channel; etcdctl then prints "expired or
// revoked." and exits 0).
func runKeepAlive(ctx context.Context, c keepAliver, w io.Writer, id clientv3.LeaseID, once bool) error {
	if once {
		r, err := c.KeepAliveOnce(ctx, id)
		if err != nil {
			return fmt.Errorf("keepalive %016x: %w", id, err)
		}
		return writeKeepAlive(w, r)
	}
	ch, err := c.KeepAlive(ctx, id)
	if err != nil {
		return fmt.Errorf("keepalive %016x: %w", id, err)
	}
	for r := range ch {
		if err := writeKeepAlive(w, r); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return writeKeepAliveEnd(w, id)
}

func newLeaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Grant, renew, inspect and revoke leases (prints like etcdctl lease)",
	}
	cmd.AddCommand(newLeaseGrantCmd(), newLeaseRevokeCmd(), newLeaseKeepAliveCmd(), newLeaseTTLCmd(), newLeaseListCmd())
	return cmd
}

func newLeaseGrantCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "grant TTL",
		Short: "Grant a lease of TTL seconds (raised to the cluster's minimum)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ttl, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("bad TTL %q: want whole seconds", args[0])
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				r, err := c.Grant(ctx, ttl)
				if err != nil {
					return fmt.Errorf("grant: %w", err)
				}
				return writeGrant(cmd.OutOrStdout(), r)
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

func newLeaseRevokeCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a lease (hex id) and delete its keys",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseID(args[0])
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				if _, err := c.Revoke(ctx, id); err != nil {
					return fmt.Errorf("revoke %016x: %w", id, err)
				}
				return writeRevoke(cmd.OutOrStdout(), id)
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

func newLeaseKeepAliveCmd() *cobra.Command {
	var (
		conn connFlags
		once bool
	)
	cmd := &cobra.Command{
		Use:     "keepalive ID",
		Aliases: []string{"keep-alive"},
		Short:   "Keep a lease (hex id) alive until interrupted or the lease is gone",
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseID(args[0])
			if err != nil {
				return err
			}
			c, err := conn.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := interrupted(cmd.Context())
			defer stop()
			return runKeepAlive(ctx, c, cmd.OutOrStdout(), id, once)
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().BoolVar(&once, "once", false, "renew once and exit")
	return cmd
}

func newLeaseTTLCmd() *cobra.Command {
	var (
		cf   clientFlags
		keys bool
	)
	cmd := &cobra.Command{
		Use:     "ttl ID",
		Aliases: []string{"timetolive"},
		Short:   "Show a lease's granted and remaining TTL (and its keys with --keys)",
		Args:    argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseID(args[0])
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				var opts []clientv3.LeaseOption
				if keys {
					opts = append(opts, clientv3.WithAttachedKeys())
				}
				r, err := c.TimeToLive(ctx, id, opts...)
				if err != nil {
					return fmt.Errorf("ttl %016x: %w", id, err)
				}
				return writeTimeToLive(cmd.OutOrStdout(), r, keys)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().BoolVar(&keys, "keys", false, "also list the keys attached to the lease")
	return cmd
}

func newLeaseListCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every lease",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				r, err := c.Leases(ctx)
				if err != nil {
					return fmt.Errorf("lease list: %w", err)
				}
				return writeLeases(cmd.OutOrStdout(), r)
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}
