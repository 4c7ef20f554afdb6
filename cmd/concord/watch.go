package main

// concord watch: etcdctl watch's simple output over clientv3, until
// interrupted.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() { subcommands = append(subcommands, newWatchCmd) }

type watchCmdOptions struct {
	prefix bool
	rev    int64
	prevKV bool
}

func (o watchCmdOptions) validate(key string) error {
	switch {
	case key == "" && !o.prefix:
		return usagef(`watch: empty key (use --prefix "" for every key)`)
	case o.rev < 0:
		return usagef("watch: --rev must not be negative, got %d", o.rev)
	}
	return nil
}

func (o watchCmdOptions) opOptions() []clientv3.OpOption {
	var opts []clientv3.OpOption
	if o.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	return opts
}

// writeWatchResponse prints etcdctl's simple format: per event its type line
// (PUT or DELETE), then the previous key and value lines when present, then
// the key and value lines (a delete's value line is empty).
func writeWatchResponse(w io.Writer, resp clientv3.WatchResponse) error {
	if resp.IsProgressNotify() {
		_, err := fmt.Fprintf(w, "progress notify: %d\n", resp.Header.Revision)
		return err
	}
	for _, e := range resp.Events {
		if _, err := fmt.Fprintln(w, e.Type); err != nil {
			return err
		}
		if e.PrevKv != nil {
			if _, err := fmt.Fprintf(w, "%s\n%s\n", e.PrevKv.Key, e.PrevKv.Value); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s\n%s\n", e.Kv.Key, e.Kv.Value); err != nil {
			return err
		}
	}
	return nil
}

type watcherClient interface {
	Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan
}

// runWatch prints events until ctx ends (a clean exit) or the server cancels
// the watch (an error, e.g. a compacted start revision).
func runWatch(ctx context.Context, c watcherClient, w io.Writer, key string, o watchCmdOptions) error {
	// etcdctl watches with WithRequireLeader: a member cut off from the
	// leader ends the stream and clientv3 moves to another member.
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range c.Watch(ctx, key, o.opOptions()...) {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch was canceled (%w)", err)
		}
		if err := writeWatchResponse(w, resp); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("watch is canceled by the server")
}

func newWatchCmd() *cobra.Command {
	var (
		cf clientFlags
		o  watchCmdOptions
	)
	cmd := &cobra.Command{
		Use:   "watch KEY",
		Short: "Print changes to a key or prefix as they happen (like etcdctl watch), until interrupted",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[0]); err != nil {
				return err
			}
			c, err := cf.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runWatch(ctx, c, cmd.OutOrStdout(), args[0], o)
		},
	}
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&o.prefix, "prefix", false, "watch every key with KEY as prefix")
	fs.Int64Var(&o.rev, "rev", 0, "start at this revision (0 = from now)")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "print the previous key and value of each event")
	return cmd
}
