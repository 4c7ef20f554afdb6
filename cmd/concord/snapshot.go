package main

// concord snapshot save|restore|status: etcdctl's snapshot verbs for
// Concord's snapshot files (format in internal/server/snapfile.go).

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/server"
)

func init() { subcommands = append(subcommands, newSnapshotCmd) }

func newSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save a member's state to a file, inspect it, or restore a new cluster from it",
	}
	cmd.AddCommand(newSnapshotSaveCmd(), newSnapshotRestoreCmd(), newSnapshotStatusCmd())
	return cmd
}

func newSnapshotSaveCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Stream one member's point-in-time state into FILE",
		Long: `Save asks the one member named by --endpoints for a snapshot (the Maintenance
Snapshot stream, as etcdctl snapshot save), checks its SHA-256 and writes it
to FILE through FILE.part, fsync and rename. etcdctl snapshot save produces
the same file.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := cf.conn.dialer(cmd)
			if err != nil {
				return err
			}
			if eps := d.endpoints(); len(eps) != 1 {
				return usagef("snapshot save: name exactly one endpoint (a snapshot is one member's state), got %d", len(eps))
			}
			if cf.commandTimeout <= 0 {
				return usagef("--command-timeout must be positive, got %v", cf.commandTimeout)
			}
			c, err := d.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), cf.commandTimeout)
			defer cancel()
			rev, size, err := saveSnapshot(ctx, c, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Snapshot saved at %s (%d bytes, revision %d)\n", args[0], size, rev)
			return nil
		},
	}
	cf.register(cmd.Flags())
	// A snapshot of a large store takes longer than a quick verb.
	cf.commandTimeout = time.Minute
	cmd.Flags().Lookup("command-timeout").DefValue = cf.commandTimeout.String()
	return cmd
}

// saveSnapshot streams the snapshot into path and returns the revision the
// member reported and the file's size.
func saveSnapshot(ctx context.Context, c *clientv3.Client, path string) (int64, int64, error) {
	resp, err := c.SnapshotWithVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot: %w", err)
	}
	defer resp.Snapshot.Close()
	data, err := io.ReadAll(resp.Snapshot)
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot: receive: %w", err)
	}
	if _, err := server.DecodeSnapshotFile(data); err != nil {
		return 0, 0, fmt.Errorf("snapshot: received file is bad: %w", err)
	}
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, 0, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, path)
	}
	if err != nil {
		os.Remove(part)
		return 0, 0, fmt.Errorf("snapshot: write %s: %w", path, err)
	}
	var rev int64
	if resp.Header != nil {
		rev = resp.Header.Revision
	}
	return rev, int64(len(data)), nil
}

func newSnapshotRestoreCmd() *cobra.Command {
	var (
		name, dataDir, initialCluster, token, advertisePeer string
	)
	def := server.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Create a new member's data dir from a snapshot file",
		Long: `Restore checks FILE (SHA-256, format) and creates --data-dir for member --name of
a new cluster: the file's keys, revision and leases, the member list of
--initial-cluster, fresh member and cluster ids. Run it for every member of
the new cluster with the same FILE, --initial-cluster and
--initial-cluster-token, then start each with "concord server" and the same
--name, --data-dir, --initial-cluster and peer URL flags.`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if advertisePeer == "" {
				advertisePeer = "http://127.0.0.1:2380"
			}
			urls, err := parseURLs("initial-advertise-peer-urls", advertisePeer)
			if err != nil {
				return usageError{err}
			}
			if initialCluster == "" {
				initialCluster = name + "=" + urls[0]
			}
			peers, err := server.ParseInitialCluster(initialCluster)
			if err != nil {
				return usagef("--initial-cluster: %v", err)
			}
			for _, p := range peers {
				if p.Name == name && p.URL != urls[0] {
					return usagef("--initial-cluster gives %s the peer URL %s but --initial-advertise-peer-urls is %s", name, p.URL, urls[0])
				}
			}
			if dataDir == "" {
				dataDir = filepath.Join("concord-data", name)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			info, err := server.RestoreDataDir(server.RestoreConfig{
				Name: name, DataDir: dataDir, InitialCluster: peers, ClusterToken: token, FS: vfs.Default,
			}, data)
			if err != nil {
				return fmt.Errorf("snapshot restore %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s into %s: member %x of new cluster %x, revision %d\n",
				args[0], dataDir, info.MemberID, info.ClusterID, info.Revision)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "default", "name of the member being restored")
	fl.StringVar(&dataDir, "data-dir", "", "directory to create (default ./concord-data/<name>); must not hold a member")
	fl.StringVar(&initialCluster, "initial-cluster", "", "members of the new cluster, name=http://host:port,... (default <name>=<initial-advertise-peer-urls>)")
	fl.StringVar(&token, "initial-cluster-token", def.ClusterToken, "token of the new cluster")
	fl.StringVar(&advertisePeer, "initial-advertise-peer-urls", "", "this member's peer URL (default http://127.0.0.1:2380)")
	return cmd
}

func newSnapshotStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status FILE",
		Short: "Check a snapshot file and print its revision, keys and hash",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			blob, err := server.DecodeSnapshotFile(data)
			if err != nil {
				return err
			}
			a := apply.New(nil)
			if err := a.Restore(blob); err != nil {
				return fmt.Errorf("%w: %w", server.ErrBadSnapshotFile, err)
			}
			st := a.Store()
			hash, _, err := st.Hash(0)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revision %d, compact revision %d, keys %d, hash %d, size %d bytes\n",
				st.Rev(), st.CompactRev(), st.Len(), hash, len(data))
			return nil
		},
	}
}
