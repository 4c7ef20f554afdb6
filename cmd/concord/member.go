package main

// The member verbs: add, remove, promote, update, list. Like etcdctl's
// member commands they speak only etcd's Cluster API, so they work against
// etcd too. `concord members` stays as the short form of `member list`.

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() { subcommands = append(subcommands, newMemberCmd) }

// memberClient is the part of clientv3.Cluster the verbs use.
type memberClient interface {
	MemberAdd(ctx context.Context, peerAddrs []string) (*clientv3.MemberAddResponse, error)
	MemberAddAsLearner(ctx context.Context, peerAddrs []string) (*clientv3.MemberAddResponse, error)
	MemberRemove(ctx context.Context, id uint64) (*clientv3.MemberRemoveResponse, error)
	MemberUpdate(ctx context.Context, id uint64, peerAddrs []string) (*clientv3.MemberUpdateResponse, error)
	MemberPromote(ctx context.Context, id uint64) (*clientv3.MemberPromoteResponse, error)
}

// parseMemberID reads a member id as etcdctl prints it: hexadecimal.
func parseMemberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil || id == 0 {
		return 0, usagef("bad member ID %q: want the hexadecimal ID that member list prints", s)
	}
	return id, nil
}

// parsePeerURLs splits --peer-urls; every URL must be http://host:port.
func parsePeerURLs(s string) ([]string, error) {
	var urls []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, usagef("--peer-urls is required")
	}
	return urls, nil
}

// runMemberAdd adds a member and prints how to start it, as etcdctl prints
// the ETCD_* variables: every server flag can be set as CONCORD_<FLAG>.
func runMemberAdd(ctx context.Context, c memberClient, w io.Writer, name string, urls []string, learner bool) error {
	add := c.MemberAdd
	if learner {
		add = c.MemberAddAsLearner
	}
	resp, err := add(ctx, urls)
	if err != nil {
		return fmt.Errorf("member add: %w", err)
	}
	newID := resp.Member.ID
	var initial []string
	for _, m := range resp.Members {
		n := m.Name
		if m.ID == newID {
			n = name
		}
		for _, u := range m.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	_, err = fmt.Fprintf(w, "Member %s added to cluster %s\n\nCONCORD_NAME=%q\nCONCORD_INITIAL_CLUSTER=%q\nCONCORD_ADVERTISE_PEER=%q\nCONCORD_INITIAL_CLUSTER_STATE=\"existing\"\n",
		hexID(newID), hexID(resp.Header.ClusterId), name, strings.Join(initial, ","), strings.Join(urls, ","))
	return err
}

func runMemberRemove(ctx context.Context, c memberClient, w io.Writer, id uint64) error {
	resp, err := c.MemberRemove(ctx, id)
	if err != nil {
		return fmt.Errorf("member remove: %w", err)
	}
	_, err = fmt.Fprintf(w, "Member %s removed from cluster %s\n", hexID(id), hexID(resp.Header.ClusterId))
	return err
}

func runMemberPromote(ctx context.Context, c memberClient, w io.Writer, id uint64) error {
	resp, err := c.MemberPromote(ctx, id)
	if err != nil {
		return fmt.Errorf("member promote: %w", err)
	}
	_, err = fmt.Fprintf(w, "Member %s promoted in cluster %s\n", hexID(id), hexID(resp.Header.ClusterId))
	return err
}

func runMemberUpdate(ctx context.Context, c memberClient, w io.Writer, id uint64, urls []string) error {
	resp, err := c.MemberUpdate(ctx, id, urls)
	if err != nil {
		return fmt.Errorf("member update: %w", err)
	}
	_, err = fmt.Fprintf(w, "Member %s updated in cluster %s\n", hexID(id), hexID(resp.Header.ClusterId))
	return err
}

func newMemberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Add, remove, promote, update and list cluster members",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("member needs a subcommand: add, remove, promote, update or list")
		},
	}
	cmd.AddCommand(newMemberAddCmd(), newMemberIDCmd("remove", "Remove a member", runMemberRemove),
		newMemberIDCmd("promote", "Promote a learner to a voting member", runMemberPromote),
		newMemberUpdateCmd(), newMemberListCmd())
	return cmd
}

func newMemberAddCmd() *cobra.Command {
	var cf clientFlags
	var peerURLs string
	var learner bool
	cmd := &cobra.Command{
		Use:   "add NAME --peer-urls URL[,URL...]",
		Short: "Add a member (start it afterwards with --initial-cluster-state existing)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			urls, err := parsePeerURLs(peerURLs)
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runMemberAdd(ctx, c, cmd.OutOrStdout(), args[0], urls, learner)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma-separated peer URLs of the new member (http://host:port)")
	cmd.Flags().BoolVar(&learner, "learner", false, "add the member as a learner (no vote until promoted)")
	return cmd
}

// newMemberIDCmd builds a verb that takes one member ID.
func newMemberIDCmd(use, short string, run func(context.Context, memberClient, io.Writer, uint64) error) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return run(ctx, c, cmd.OutOrStdout(), id)
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

func newMemberUpdateCmd() *cobra.Command {
	var cf clientFlags
	var peerURLs string
	cmd := &cobra.Command{
		Use:   "update ID --peer-urls URL[,URL...]",
		Short: "Change a member's peer URLs",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			urls, err := parsePeerURLs(peerURLs)
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runMemberUpdate(ctx, c, cmd.OutOrStdout(), id, urls)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma-separated new peer URLs (http://host:port)")
	return cmd
}

func newMemberListCmd() *cobra.Command {
	cmd := newMembersCmd()
	cmd.Use = "list"
	return cmd
}
