package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func init() { subcommands = append(subcommands, newLockCmd, newElectCmd) }

// sessionFlags are connFlags plus the lease TTL of the session that holds a
// lock or a candidacy.
type sessionFlags struct {
	conn connFlags
	ttl  int
}

func (f *sessionFlags) register(cmd *cobra.Command) {
	f.conn.register(cmd.Flags())
	cmd.Flags().IntVar(&f.ttl, "ttl", 10, "TTL in seconds of the session lease; the lock or leadership is lost this long after this process dies")
}

// session dials and opens a concurrency session; close the returned client
// after the session.
func (f *sessionFlags) session(cmd *cobra.Command) (*clientv3.Client, *concurrency.Session, error) {
	d, err := f.conn.dialer(cmd)
	if err != nil {
		return nil, nil, err
	}
	if f.ttl <= 0 {
		return nil, nil, usagef("--ttl must be positive, got %d", f.ttl)
	}
	c, err := d.dial()
	if err != nil {
		return nil, nil, err
	}
	s, err := concurrency.NewSession(c, concurrency.WithTTL(f.ttl))
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("open session: %w", err)
	}
	return c, s, nil
}

// interrupted returns a context cancelled by SIGINT or SIGTERM.
func interrupted(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

func newLockCmd() *cobra.Command {
	var f sessionFlags
	cmd := &cobra.Command{
		Use:   "lock NAME [-- COMMAND [ARGS...]]",
		Short: "Acquire a distributed lock (clientv3 concurrency.Mutex), like etcdctl lock",
		Long: `Lock waits for the lock NAME, prints the lock's key and holds it until
interrupted. Given a command, it runs the command while holding the lock
(with CONCORD_LOCK_KEY and CONCORD_LOCK_REV set, and ETCD_LOCK_KEY and
ETCD_LOCK_REV as etcdctl does), releases the lock and exits with the command's
status. CONCORD_LOCK_REV is a fencing token: it grows with every acquisition.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || args[0] == "" {
				return usagef("lock: want a lock name; usage: %s", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := f.session(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			defer s.Close()
			ctx, stop := interrupted(cmd.Context())
			defer stop()
			m := concurrency.NewMutex(s, args[0])
			if err := m.Lock(ctx); err != nil {
				return fmt.Errorf("lock %s: %w", args[0], err)
			}
			defer func() {
				uctx, cancel := context.WithTimeout(context.Background(), f.conn.dialTimeout)
				defer cancel()
				m.Unlock(uctx)
			}()
			if len(args) == 1 {
				fmt.Fprintln(cmd.OutOrStdout(), m.Key())
				select {
				case <-ctx.Done():
				case <-s.Done():
					return fmt.Errorf("lock %s lost: session expired", args[0])
				}
				return nil
			}
			return runLocked(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), m, args[1:])
		},
	}
	f.register(cmd)
	return cmd
}

func runLocked(ctx context.Context, stdout, stderr io.Writer, m *concurrency.Mutex, argv []string) error {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	rev := fmt.Sprint(m.Header().Revision)
	c.Env = append(os.Environ(),
		"CONCORD_LOCK_KEY="+m.Key(), "CONCORD_LOCK_REV="+rev,
		"ETCD_LOCK_KEY="+m.Key(), "ETCD_LOCK_REV="+rev)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, stdout, stderr
	return c.Run()
}

func newElectCmd() *cobra.Command {
	var f sessionFlags
	cmd := &cobra.Command{
		Use:   "elect NAME [PROPOSAL]",
		Short: "Campaign in, or observe, a leader election (clientv3 concurrency.Election), like etcdctl elect",
		Long: `With a PROPOSAL, elect campaigns for leadership of NAME, prints the leader
key and proposal once elected, and holds leadership until interrupted (then
resigns). Without one, it observes NAME and prints every new leader's key
and proposal.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 || args[0] == "" {
				return usagef("elect: usage: %s", cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := f.session(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			defer s.Close()
			ctx, stop := interrupted(cmd.Context())
			defer stop()
			e := concurrency.NewElection(s, args[0])
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				for r := range e.Observe(ctx) {
					for _, kv := range r.Kvs {
						fmt.Fprintf(out, "%s\n%s\n", kv.Key, kv.Value)
					}
				}
				return nil
			}
			if err := e.Campaign(ctx, args[1]); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("campaign %s: %w", args[0], err)
			}
			fmt.Fprintf(out, "%s\n%s\n", e.Key(), args[1])
			select {
			case <-ctx.Done():
			case <-s.Done():
				return fmt.Errorf("leadership of %s lost: session expired", args[0])
			}
			rctx, cancel := context.WithTimeout(context.Background(), f.conn.dialTimeout)
			defer cancel()
			return e.Resign(rctx)
		},
	}
	f.register(cmd)
	return cmd
}
