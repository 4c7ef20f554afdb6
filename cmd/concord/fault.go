package main

// The fault verbs: concord fault partition/isolate-leader/delay/drop/
// duplicate/pause/clock/disk/heal/list. They drive the fault API (package admin documents
// it) of every member: each member judges only the raft messages it sends,
// so a rule meant for the cluster goes to all of them. The members are
// found through clientv3 MemberList on --endpoints; the API is reached on
// each member's first client URL.
//
// Layers as in client.go: cobra plumbing that turns arguments into a
// faults.Spec (usage errors before anything is dialed), run functions over
// a list of targets and an HTTP client (tests use httptest), and writers.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concord-db/concord/internal/faults"
)

func init() { subcommands = append(subcommands, newFaultCmd) }

// faultFlags are the flags every fault verb shares.
type faultFlags struct {
	cf clientFlags
	// capture, when set, receives each verb's validated spec instead of
	// it being sent: parseFaultWords uses it so a schedule entry is read by
	// exactly the parser the verbs use. Nothing is dialed in that mode.
	capture func(faults.Spec) error
}

// ruleFlags are the flags of the verbs that install a rule.
type ruleFlags struct {
	duration    time.Duration
	id          string
	description string
}

func (r *ruleFlags) register(cmd *cobra.Command) {
	r.registerNoDuration(cmd)
	cmd.Flags().DurationVar(&r.duration, "duration", 0, "remove the rule after this long (default: until healed)")
}

// registerNoDuration is for pause, whose DURATION is an argument.
func (r *ruleFlags) registerNoDuration(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.id, "id", "", "the rule's id (default: chosen by the first member, f1, f2, ...)")
	cmd.Flags().StringVar(&r.description, "description", "", "what list shows for the rule (default: generated)")
}

func (r *ruleFlags) apply(s *faults.Spec) error {
	if r.duration < 0 {
		return usagef("--duration must not be negative, got %v", r.duration)
	}
	s.Duration = faults.Duration(r.duration)
	s.ID = r.id
	s.Description = r.description
	return nil
}

// msgFlags narrow a rule to message types and a budget.
type msgFlags struct {
	types []string
	next  int64
}

func (m *msgFlags) register(cmd *cobra.Command, withNext bool) {
	cmd.Flags().StringSliceVar(&m.types, "type", nil, "only these raft message types, e.g. MsgVote,MsgPreVote (repeatable; default all)")
	if withNext {
		cmd.Flags().Int64Var(&m.next, "next", 0, "act on only the next N matching messages each member sends")
	}
}

const linkHelp = `LINK is FROM->TO (one way) or A<->B (both ways); each side is a member name,
a hexadecimal member id, "leader" or * (any member). Quote it: the shell
reads > as a redirection. Without LINK the rule applies to every link.`

func newFaultCmd() *cobra.Command {
	var f faultFlags
	cmd := newFaultVerbsCmd(&f)
	cmd.AddCommand(newFaultScheduleCmd(&f))
	return cmd
}

// newFaultVerbsCmd is the fault command with every verb but schedule, so
// a schedule entry cannot name another schedule.
func newFaultVerbsCmd(f *faultFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject network, pause, clock and disk faults (members need --fault-injection)",
		Long: `Drop, delay, duplicate or partition the raft messages members send each other;
pause a member's raft loop, skew its lease clock, or slow or fail its disk.
Each rule is installed on every member (found with MemberList through
--endpoints), through the fault API on each member's client URL; members
must run with --fault-injection. A pause, clock or disk rule acts only on
the member it names. Rules live in member memory: a restarted member has
none, and heal removes them all (a paused member resumes at once).

kill crashes a member at once (exit status 137, as kill -9): it is one-shot,
never listed. A process cannot restart itself: concord dev restarts a killed
member after its --restart-after; elsewhere start it again yourself.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("fault: unknown subcommand %q; want %s", args[0], faultVerbs)
			}
			return usagef("fault needs a subcommand: %s", faultVerbs)
		},
	}
	f.cf.register(cmd.PersistentFlags())
	cmd.AddCommand(newFaultPartitionCmd(f), newFaultIsolateLeaderCmd(f), newFaultDelayCmd(f),
		newFaultLossCmd(f, faults.KindDrop), newFaultLossCmd(f, faults.KindDuplicate),
		newFaultPauseCmd(f), newFaultClockCmd(f), newFaultDiskCmd(f), newFaultKillCmd(f),
		newFaultHealCmd(f), newFaultListCmd(f))
	return cmd
}

const faultVerbs = "partition, isolate-leader, delay, drop, duplicate, pause, clock, disk, kill, heal, list or schedule"

func newFaultPauseCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	cmd := &cobra.Command{
		Use:   "pause MEMBER [DURATION]",
		Short: "Freeze a member's raft loop for a while",
		Long: `Freeze MEMBER's raft loop for DURATION (default: until healed), as a long GC
pause or SIGSTOP would: it stops ticking, stepping, proposing and applying,
while its transport keeps accepting bytes. Afterwards it resumes where it
stopped, usually to find a newer term. heal resumes it at once. MEMBER is a
name, a hexadecimal id or "leader".

  concord fault pause n1 5s
  concord fault pause leader 3s`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := faults.Spec{Kind: faults.KindPause, Member: args[0]}
			if len(args) == 2 {
				d, err := time.ParseDuration(args[1])
				if err != nil || d <= 0 {
					return usagef("pause: bad duration %q: want a positive Go duration such as 5s", args[1])
				}
				rf.duration = d
			}
			return f.install(cmd, s, &rf)
		},
	}
	rf.registerNoDuration(cmd)
	return cmd
}

func newFaultKillCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	cmd := &cobra.Command{
		Use:   "kill MEMBER",
		Short: "Crash a member's process at once, as kill -9 would",
		Long: `Crash MEMBER: it logs one line and exits at once with status 137 (what a
shell reports for kill -9), without a graceful shutdown, leadership transfer
or any flush beyond what it had already fsynced. MEMBER is a name, a
hexadecimal id or "leader" (resolved by the first member asked). The kill is
one-shot: list never shows it, the members' logs do. Under concord dev the
member is restarted after dev's --restart-after (default 2s); elsewhere
start it again yourself.

  concord fault kill n2
  concord fault kill leader`,
		Args: argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.send(cmd, faults.Spec{Kind: faults.KindKill, Member: args[0]}, &rf, runFaultKill)
		},
	}
	rf.registerNoDuration(cmd)
	return cmd
}

func newFaultClockCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	var drift float64
	cmd := &cobra.Command{
		Use:   "clock MEMBER [OFFSET]",
		Short: "Skew a member's lease clock by an offset and a drift",
		Long: `Add OFFSET (e.g. +2s, -500ms) to the clock MEMBER times leases and auth
tokens with, and with --drift R make it run R times as fast as real time
from now on (1.5: 50% fast). Raft's ticks stay real. On the leader, a clock
ahead by N expires leases about N early; heal takes the skew back at once
(the clock jumps). A negative OFFSET goes after "--", or the shell-level
parser takes it for flags.

  concord fault clock n3 +2s
  concord fault clock n3 -- -500ms
  concord fault clock leader --drift 1.5 --duration 30s`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := faults.Spec{Kind: faults.KindClock, Member: args[0]}
			if len(args) == 2 {
				d, err := time.ParseDuration(args[1])
				if err != nil {
					return usagef("clock: bad offset %q: want a signed Go duration such as +2s or -500ms", args[1])
				}
				s.Offset = faults.Duration(d)
			}
			if cmd.Flags().Changed("drift") {
				s.Drift = &drift
			}
			return f.install(cmd, s, &rf)
		},
	}
	rf.register(cmd)
	cmd.Flags().Float64Var(&drift, "drift", 1, "clock rate relative to real time, e.g. 1.5 (50% fast) or 0.8")
	return cmd
}

func newFaultDiskCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	var next int64
	cmd := &cobra.Command{
		Use:   "disk MEMBER slow DELAY | disk MEMBER fail | disk MEMBER enospc",
		Short: "Slow down or fail a member's fsyncs, or fill its disk",
		Long: `Act on MEMBER's WAL and snapshot files:
  slow DELAY  each fsync waits DELAY first (the raft loop waits with it)
  fail        fsync returns an error: the member stops with that error and
              a non-zero exit status, having acknowledged nothing unsynced
  enospc      writes fail with ENOSPC: the member stops the same way
--next N acts on the next N operations only. A member stopped by a disk
fault stays down: restart it yourself.

  concord fault disk n1 slow 200ms
  concord fault disk n2 fail
  concord fault disk n3 enospc --next 1`,
		Args: argsBetween(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := faults.Spec{Kind: faults.KindDisk, Member: args[0], Mode: faults.DiskMode(args[1]), Next: next}
			switch {
			case s.Mode == faults.DiskSlow && len(args) == 3:
				d, err := time.ParseDuration(args[2])
				if err != nil {
					return usagef("disk slow: bad delay %q: want a Go duration such as 200ms", args[2])
				}
				s.Delay = faults.Duration(d)
			case s.Mode == faults.DiskSlow:
				return usagef("disk slow needs a DELAY, e.g. concord fault disk n1 slow 200ms")
			case len(args) == 3:
				return usagef("disk %s takes no third argument (%q)", args[1], args[2])
			}
			return f.install(cmd, s, &rf)
		},
	}
	rf.register(cmd)
	cmd.Flags().Int64Var(&next, "next", 0, "act on only the next N matching disk operations")
	return cmd
}

// parseGroups reads partition groups: each argument is one group of
// comma-separated members; "|" also separates groups ("n1,n2|n3").
func parseGroups(args []string) ([][]string, error) {
	var groups [][]string
	for _, a := range args {
		for g := range strings.SplitSeq(a, "|") {
			var members []string
			for m := range strings.SplitSeq(g, ",") {
				if m = strings.TrimSpace(m); m != "" {
					members = append(members, m)
				}
			}
			if len(members) == 0 {
				return nil, usagef("partition: empty group in %q", a)
			}
			groups = append(groups, members)
		}
	}
	if len(groups) == 0 {
		return nil, usagef("partition needs at least one group, e.g. n1,n2 n3")
	}
	return groups, nil
}

// parseLinkAndProbability reads the [LINK] [PROBABILITY] arguments of drop
// and duplicate, in either order: a number is the probability.
func parseLinkAndProbability(verb string, args []string) (link string, p *float64, err error) {
	for _, a := range args {
		if v, perr := strconv.ParseFloat(a, 64); perr == nil {
			if p != nil {
				return "", nil, usagef("%s: two probabilities (%v and %s)", verb, *p, a)
			}
			p = &v
			continue
		}
		if link != "" {
			return "", nil, usagef("%s: two links (%s and %s); a probability is a number in (0, 1]", verb, link, a)
		}
		link = a
	}
	return link, p, nil
}

// checkSpec validates s before anything is dialed; problems are usage
// errors.
func checkSpec(s faults.Spec) error {
	if err := s.Validate(); err != nil {
		return ruleUsage(err)
	}
	return nil
}

// ruleUsage makes a faults.ErrInvalidRule a usage error, worded without
// the package prefix.
func ruleUsage(err error) error {
	return usagef("%s", strings.TrimPrefix(err.Error(), faults.ErrInvalidRule.Error()+": "))
}

func newFaultPartitionCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	var mf msgFlags
	var bridge []string
	cmd := &cobra.Command{
		Use:   "partition GROUP [GROUP...]",
		Short: "Cut every link between groups of members, both ways",
		Long: `Cut every link between members of different groups, both ways. A GROUP is a
comma-separated list of members (names, hexadecimal ids or "leader"); one
group alone is cut from all other members. With two groups or more, members
named in none keep all their links. --bridge names members that keep all
their links (Jepsen's bridge: n1,n2 n3,n4 --bridge n3 lets n3 talk to all).

  concord fault partition n1,n2 n3
  concord fault partition n1 --duration 10s
  concord fault partition n1,n2 n3,n4 --bridge n3`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			groups, err := parseGroups(args)
			if err != nil {
				return err
			}
			s := faults.Spec{Kind: faults.KindPartition, Groups: groups, Types: mf.types}
			for _, b := range bridge {
				if b = strings.TrimSpace(b); b != "" {
					s.Bridge = append(s.Bridge, b)
				}
			}
			return f.install(cmd, s, &rf)
		},
	}
	rf.register(cmd)
	mf.register(cmd, false)
	cmd.Flags().StringSliceVar(&bridge, "bridge", nil, "members that keep every link (repeatable or comma-separated)")
	return cmd
}

func newFaultIsolateLeaderCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	cmd := &cobra.Command{
		Use:   "isolate-leader",
		Short: "Partition the current leader from every other member",
		Long: `Partition the current leader from every other member, both ways. The leader
is resolved once, when the rule is installed; the rule does not follow the
elections it causes.`,
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.install(cmd, faults.Spec{Kind: faults.KindIsolateLeader}, &rf)
		},
	}
	rf.register(cmd)
	return cmd
}

func newFaultDelayCmd(f *faultFlags) *cobra.Command {
	var rf ruleFlags
	var mf msgFlags
	cmd := &cobra.Command{
		Use:   "delay [LINK] DELAY[±JITTER]",
		Short: "Delay messages on a link (jitter reorders them)",
		Long: `Hold matching messages for DELAY, plus a uniform JITTER either way when given
(50ms±10ms, also written 50ms+-10ms). A fixed delay keeps each link's order;
jitter reorders messages. ` + linkHelp + `

  concord fault delay 'n1->n2' 50ms±10ms
  concord fault delay 'n1<->n2' 200ms --type MsgApp,MsgAppResp
  concord fault delay '*->n3' 1s --duration 30s`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			link := ""
			if len(args) == 2 {
				link = args[0]
			}
			d, j, err := faults.ParseDelay(args[len(args)-1])
			if err != nil {
				return ruleUsage(err)
			}
			s := faults.Spec{Kind: faults.KindDelay, Link: link, Types: mf.types, Next: mf.next,
				Delay: faults.Duration(d), Jitter: faults.Duration(j)}
			return f.install(cmd, s, &rf)
		},
	}
	rf.register(cmd)
	mf.register(cmd, true)
	return cmd
}

func newFaultLossCmd(f *faultFlags, kind faults.Kind) *cobra.Command {
	var rf ruleFlags
	var mf msgFlags
	verb := string(kind)
	what := map[faults.Kind]string{faults.KindDrop: "Drop messages on a link", faults.KindDuplicate: "Deliver messages on a link twice"}[kind]
	cmd := &cobra.Command{
		Use:   verb + " [LINK] [PROBABILITY]",
		Short: what + ", with a probability",
		Long: what + `, each with PROBABILITY (a number in (0, 1], default 1),
optionally only --next N of them and only some --type of raft message.
` + linkHelp + `

  concord fault ` + verb + ` 'n1->n2' 1.0
  concord fault ` + verb + ` --type MsgVote,MsgPreVote 1.0
  concord fault ` + verb + ` '*->n3' 0.3 --duration 20s
  concord fault ` + verb + ` 'n1<->n2' --type MsgApp --next 5`,
		Args: argsBetween(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			link, p, err := parseLinkAndProbability(verb, args)
			if err != nil {
				return err
			}
			s := faults.Spec{Kind: kind, Link: link, Probability: p, Types: mf.types, Next: mf.next}
			return f.install(cmd, s, &rf)
		},
	}
	rf.register(cmd)
	mf.register(cmd, true)
	return cmd
}

func newFaultHealCmd(f *faultFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "heal [ID...]",
		Short: "Remove the given rules, or every rule, from every member",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, ids []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return runFaultHeal(cmd.Context(), s, ids, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}

func newFaultListCmd(f *faultFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the rules installed on the members",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.session(cmd)
			if err != nil {
				return err
			}
			return runFaultList(cmd.Context(), s, asJSON, time.Now(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each member's rules as JSON ({\"n1\":[RULE,...],...})")
	return cmd
}

// install validates s (usage errors), finds the members and installs it.
func (f *faultFlags) install(cmd *cobra.Command, s faults.Spec, rf *ruleFlags) error {
	return f.send(cmd, s, rf, runFaultInstall)
}

// send completes s from the rule flags, validates it (usage errors) and,
// unless a schedule is capturing specs, hands it to run with the members.
func (f *faultFlags) send(cmd *cobra.Command, s faults.Spec, rf *ruleFlags,
	run func(context.Context, *faultSession, faults.Spec, io.Writer, io.Writer) error) error {
	if err := rf.apply(&s); err != nil {
		return err
	}
	if err := checkSpec(s); err != nil {
		return err
	}
	if f.capture != nil {
		return f.capture(s)
	}
	sess, err := f.session(cmd)
	if err != nil {
		return err
	}
	return run(cmd.Context(), sess, s, cmd.OutOrStdout(), cmd.ErrOrStderr())
}

// faultTarget is one member's fault API.
type faultTarget struct {
	name string
	base string // the member's first client URL, e.g. http://127.0.0.1:2379
}

// faultSession is what the run functions need: the members and an HTTP
// client, with the per-request timeout.
type faultSession struct {
	targets []faultTarget
	hc      *http.Client
	timeout time.Duration
}

// session validates the connection flags, lists the members through
// clientv3 and prepares the HTTP client (TLS from the same flags).
func (f *faultFlags) session(cmd *cobra.Command) (*faultSession, error) {
	if f.capture != nil {
		return nil, usagef("%s installs no rule; a schedule cannot run it", cmd.Name())
	}
	d, err := f.cf.dialer(cmd)
	if err != nil {
		return nil, err
	}
	var members []*pb.Member
	err = f.cf.runOn(cmd, d, func(ctx context.Context, c *clientv3.Client) error {
		// Serializable: an isolated member still answers from its own
		// member table, which is all we need to reach everyone.
		resp, err := c.MemberList(ctx, clientv3.WithSerializable())
		if err != nil {
			return fmt.Errorf("fault: listing members: %w", err)
		}
		members = resp.Members
		return nil
	})
	if err != nil {
		return nil, err
	}
	targets, skipped, err := faultTargets(members, d.cfg.TLS != nil)
	for _, s := range skipped {
		fmt.Fprintf(cmd.ErrOrStderr(), "concord: fault: skipping %s\n", s)
	}
	if err != nil {
		return nil, err
	}
	return &faultSession{targets: targets, hc: faultHTTPClient(d.cfg.TLS), timeout: f.cf.commandTimeout}, nil
}

// faultTargets picks each member's first client URL, sorted by name.
// Members without one (not started yet) are skipped and named in skipped.
// An https URL needs TLS flags; an unknown scheme is refused.
func faultTargets(members []*pb.Member, haveTLS bool) (targets []faultTarget, skipped []string, err error) {
	for _, m := range members {
		name := m.Name
		if name == "" {
			name = hexID(m.ID)
		}
		if len(m.ClientURLs) == 0 {
			skipped = append(skipped, fmt.Sprintf("member %s: no client URL yet (not started?)", name))
			continue
		}
		u := strings.TrimRight(m.ClientURLs[0], "/")
		switch {
		case strings.HasPrefix(u, "http://"):
		case strings.HasPrefix(u, "https://"):
			if !haveTLS {
				return nil, nil, usagef("member %s serves %s: give --cacert (or --insecure-skip-tls-verify) to reach its fault API over TLS", name, u)
			}
		default:
			return nil, nil, fmt.Errorf("fault: member %s has client URL %s; the fault API needs http:// or https://", name, u)
		}
		targets = append(targets, faultTarget{name: name, base: u})
	}
	if len(targets) == 0 {
		return nil, skipped, errors.New("fault: no member has a client URL")
	}
	slices.SortFunc(targets, func(a, b faultTarget) int { return strings.Compare(a.name, b.name) })
	return targets, skipped, nil
}

func faultHTTPClient(tc *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // members are addressed directly, never through $HTTP_PROXY
	if tc != nil {
		tr.TLSClientConfig = tc.Clone()
	}
	return &http.Client{Transport: tr}
}

// apiError is an error answer of the fault API.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// call sends one request to t's fault API and decodes the answer into out.
func (s *faultSession) call(ctx context.Context, t faultTarget, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return &apiError{status: resp.StatusCode, msg: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// definite reports whether err is the member refusing the request itself
// (4xx): the next member would refuse it too.
func definite(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status/100 == 4
}

// runFaultInstall installs s on the first member that takes it, then its
// canonical form (same id, members resolved, "leader" fixed) on the others.
func runFaultInstall(ctx context.Context, s *faultSession, spec faults.Spec, w, errw io.Writer) error {
	_, err := installRule(ctx, s, spec, w, errw)
	return err
}

// installRule is runFaultInstall that also returns the rule's id, empty
// when no member took it; a partial install returns the id and an error.
func installRule(ctx context.Context, s *faultSession, spec faults.Spec, w, errw io.Writer) (string, error) {
	var canon *faults.Info
	var on, failed []string
	for _, t := range s.targets {
		body := spec
		if canon != nil {
			body = canon.Spec
		}
		var info faults.Info
		if err := s.call(ctx, t, http.MethodPost, "/v1/faults", body, &info); err != nil {
			if canon == nil && definite(err) {
				return "", fmt.Errorf("fault: %s: %w", t.name, err)
			}
			fmt.Fprintf(errw, "concord: fault: %s: %v\n", t.name, err)
			failed = append(failed, t.name)
			continue
		}
		if canon == nil {
			canon = &info
		}
		on = append(on, t.name)
	}
	if canon == nil {
		return "", fmt.Errorf("fault: rule installed on no member (failed on %s)", strings.Join(failed, ", "))
	}
	fmt.Fprintf(w, "%s installed on %s: %s\n", canon.ID, strings.Join(on, ","), canon.Description)
	if len(failed) > 0 {
		return canon.ID, fmt.Errorf("fault: rule %s not installed on %s; the others have it (heal with: concord fault heal %s)", canon.ID, strings.Join(failed, ", "), canon.ID)
	}
	return canon.ID, nil
}

// killResult is the fault API's answer to a kill rule (admin.KillResult).
type killResult struct {
	faults.Info
	Killed bool `json:"killed"`
}

// runFaultKill asks the first member that answers to resolve the kill
// ("leader" fixed, the member by name); if that member is not the one
// named, it sends the canonical rule to the member named, which answers and
// exits.
func runFaultKill(ctx context.Context, s *faultSession, spec faults.Spec, w, errw io.Writer) error {
	var res killResult
	var first faultTarget
	resolved := false
	for _, t := range s.targets {
		if err := s.call(ctx, t, http.MethodPost, "/v1/faults", spec, &res); err != nil {
			if definite(err) {
				return fmt.Errorf("fault: %s: %w", t.name, err)
			}
			fmt.Fprintf(errw, "concord: fault: %s: %v\n", t.name, err)
			continue
		}
		first, resolved = t, true
		break
	}
	if !resolved {
		return errors.New("fault: no member answered the kill")
	}
	if !res.Killed {
		victim := res.Member
		i := slices.IndexFunc(s.targets, func(t faultTarget) bool { return t.name == victim })
		if i < 0 || s.targets[i] == first {
			return fmt.Errorf("fault: %s resolved the kill to %s, which has no client URL to reach", first.name, victim)
		}
		canon := res.Spec
		res = killResult{}
		if err := s.call(ctx, s.targets[i], http.MethodPost, "/v1/faults", canon, &res); err != nil {
			return fmt.Errorf("fault: kill %s: %w", victim, err)
		}
		if !res.Killed {
			return fmt.Errorf("fault: %s did not take the kill as its own", victim)
		}
	}
	_, err := fmt.Fprintf(w, "%s killed: %s\n", res.Member, res.Description)
	return err
}

// runFaultHeal removes the given rules (all when ids is empty) everywhere.
func runFaultHeal(ctx context.Context, s *faultSession, ids []string, w, errw io.Writer) error {
	var failed []string
	for _, t := range s.targets {
		var removed []string
		if len(ids) == 0 {
			var out struct {
				Removed []faults.Info `json:"removed"`
			}
			if err := s.call(ctx, t, http.MethodDelete, "/v1/faults", nil, &out); err != nil {
				fmt.Fprintf(errw, "concord: fault: %s: %v\n", t.name, err)
				failed = append(failed, t.name)
				continue
			}
			for _, r := range out.Removed {
				removed = append(removed, r.ID)
			}
		} else {
			for _, id := range ids {
				err := s.call(ctx, t, http.MethodDelete, "/v1/faults/"+id, nil, nil)
				var ae *apiError
				switch {
				case err == nil:
					removed = append(removed, id)
				case errors.As(err, &ae) && ae.status == http.StatusNotFound:
					// Not there (expired, or never installed here): healed.
				default:
					fmt.Fprintf(errw, "concord: fault: %s: %v\n", t.name, err)
					failed = appendUniqueString(failed, t.name)
				}
			}
		}
		if len(removed) == 0 {
			fmt.Fprintf(w, "%s: nothing to remove\n", t.name)
		} else {
			fmt.Fprintf(w, "%s: removed %s\n", t.name, strings.Join(removed, ","))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("fault: heal failed on %s", strings.Join(failed, ", "))
	}
	return nil
}

func appendUniqueString(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// runFaultList merges every member's rules by id.
func runFaultList(ctx context.Context, s *faultSession, asJSON bool, now time.Time, w, errw io.Writer) error {
	perMember := map[string][]faults.Info{}
	var failed []string
	for _, t := range s.targets {
		var out struct {
			Faults []faults.Info `json:"faults"`
		}
		if err := s.call(ctx, t, http.MethodGet, "/v1/faults", nil, &out); err != nil {
			fmt.Fprintf(errw, "concord: fault: %s: %v\n", t.name, err)
			failed = append(failed, t.name)
			continue
		}
		perMember[t.name] = out.Faults
	}
	var err error
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		err = enc.Encode(perMember)
	} else {
		err = writeFaultTable(w, s.targets, perMember, now)
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("fault: could not list %s", strings.Join(failed, ", "))
	}
	return nil
}

// writeFaultTable prints one line per rule id: its description, when it
// expires (the earliest member), where it is installed and how many
// messages it acted on (summed over members).
func writeFaultTable(w io.Writer, targets []faultTarget, perMember map[string][]faults.Info, now time.Time) error {
	type row struct {
		info    faults.Info
		members []string
		fired   uint64
	}
	rows := map[string]*row{}
	var ids []faults.Info
	for _, t := range targets {
		for _, info := range perMember[t.name] {
			r := rows[info.ID]
			if r == nil {
				r = &row{info: info}
				rows[info.ID] = r
				ids = append(ids, info)
			}
			r.members = append(r.members, t.name)
			r.fired += info.Fired
			if info.Expires != nil && (r.info.Expires == nil || info.Expires.Before(*r.info.Expires)) {
				r.info.Expires = info.Expires
			}
		}
	}
	if len(ids) == 0 {
		_, err := fmt.Fprintln(w, "no fault rules installed")
		return err
	}
	faults.SortByID(ids)
	return writeTable(w, func(tw io.Writer) {
		fmt.Fprintln(tw, "ID\tRULE\tEXPIRES\tON\tFIRED")
		for _, info := range ids {
			r := rows[info.ID]
			expires := "never"
			if r.info.Expires != nil {
				expires = "in " + max(r.info.Expires.Sub(now), 0).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", info.ID, r.info.Description, expires, strings.Join(r.members, ","), r.fired)
		}
	})
}
