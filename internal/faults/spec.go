package faults

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Errors of the fault plane; package admin maps them to HTTP statuses.
var (
	// ErrInvalidRule wraps every problem with a Spec's content.
	ErrInvalidRule = errors.New("faults: invalid rule")
	// ErrUnknownMember means a rule names a member the cluster does not know.
	ErrUnknownMember = errors.New("faults: unknown member")
	// ErrNoLeader means a rule names "leader" while no leader is known.
	ErrNoLeader = errors.New("faults: no leader known")
	// ErrNotFound means no installed rule has the id.
	ErrNotFound = errors.New("faults: no such rule")
	// ErrDuplicateID means a rule with the given id is already installed.
	ErrDuplicateID = errors.New("faults: rule id already in use")
	// ErrTooManyRules means MaxRules rules are installed already.
	ErrTooManyRules = errors.New("faults: too many rules")
)

// Limits on one rule and on the Plane.
const (
	// MaxRules bounds the installed rules of one Plane: every outbound
	// message is judged against all of them.
	MaxRules = 256
	// MaxDelay bounds Delay+Jitter: delayed messages wait in memory.
	MaxDelay = 10 * time.Minute
	// maxDescription bounds a given description, in bytes.
	maxDescription = 256
	// maxIDLen bounds a given rule id.
	maxIDLen = 64
)

// Kind is what a rule does.
type Kind string

const (
	KindDrop          Kind = "drop"
	KindDelay         Kind = "delay"
	KindDuplicate     Kind = "duplicate"
	KindPartition     Kind = "partition"
	KindIsolateLeader Kind = "isolate-leader"
	// Member faults (member.go): they act on one member's own process,
	// not on its messages.
	KindPause Kind = "pause"
	KindClock Kind = "clock"
	KindDisk  Kind = "disk"
	// KindKill crashes a member's process at once, as kill -9 would. It
	// is one-shot: Plane.Kill resolves it and the member exits; it is
	// never installed or listed.
	KindKill Kind = "kill"
)

// KillExitStatus is the exit status of a member killed by a kill rule:
// 128+SIGKILL, what a shell reports for a process ended by kill -9, so
// supervisors (concord dev) treat both alike.
const KillExitStatus = 137

// kindList is what error messages offer.
const kindList = "drop, delay, duplicate, partition, isolate-leader, pause, clock, disk or kill"

// Any is the wildcard member of a Link.
const Any = "*"

// LeaderRef names the current leader in a Spec; it is resolved at install.
const LeaderRef = "leader"

// Duration is a time.Duration that reads and writes JSON as Go's duration
// text ("50ms", "1m30s").
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go's duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q: want Go syntax such as 50ms or 1m30s", b)
	}
	*d = Duration(v)
	return nil
}

// Spec is one rule as an operator writes it (the JSON body of POST
// /v1/faults). Fields a Kind does not use must be left empty.
type Spec struct {
	// ID names the rule; empty lets the Plane choose ("f1", "f2", ...).
	// Letters, digits, '.', '_' and '-', at most 64.
	ID string `json:"id,omitempty"`
	// Kind is drop, delay, duplicate, partition or isolate-leader.
	Kind Kind `json:"kind"`
	// Link scopes drop, delay and duplicate: "FROM->TO" or "A<->B", each
	// side a member or "*" (empty: "*->*").
	Link string `json:"link,omitempty"`
	// Types narrows the rule to these raft message types (empty: all).
	Types []string `json:"types,omitempty"`
	// Probability that the rule acts on a matching message, in (0, 1]
	// (nil: 1). Not for partitions.
	Probability *float64 `json:"probability,omitempty"`
	// Next, when positive, makes the rule act on only the next N matching
	// messages each member sends, then retire. Not for partitions.
	Next int64 `json:"next,omitempty"`
	// Delay and Jitter (delay only): each message waits Delay plus a
	// uniform offset in [-Jitter, +Jitter], at least zero. A disk rule in
	// slow mode takes Delay alone: what each fsync waits.
	Delay  Duration `json:"delay,omitempty"`
	Jitter Duration `json:"jitter,omitempty"`
	// Groups (partition only): disjoint sets of members.
	Groups [][]string `json:"groups,omitempty"`
	// Bridge (partition only): members that keep every link.
	Bridge []string `json:"bridge,omitempty"`
	// Member (pause, clock, disk): the member the fault acts on.
	Member string `json:"member,omitempty"`
	// Offset (clock only): added to the member's lease clock, e.g. "2s" or
	// "-500ms".
	Offset Duration `json:"offset,omitempty"`
	// Drift (clock only): the member's lease clock runs this many times as
	// fast as real time from the install on, in [MinDrift, MaxDrift] (nil: 1).
	Drift *float64 `json:"drift,omitempty"`
	// Mode (disk only): "slow" (each fsync waits Delay first), "fail"
	// (fsync returns an error) or "enospc" (writes fail with ENOSPC).
	Mode DiskMode `json:"mode,omitempty"`
	// Duration, when positive, makes the rule expire that long after it is
	// installed; for pause it is how long the member stays frozen.
	Duration Duration `json:"duration,omitempty"`
	// Description is shown by list and in the logs (empty: generated).
	Description string `json:"description,omitempty"`
}

// Validate checks what can be checked without knowing the cluster: the
// kind, the syntax of link, types, delays and id, and that each field fits
// the kind. Errors wrap ErrInvalidRule.
func (s Spec) Validate() error {
	_, err := s.check()
	return err
}

// checked is a Spec's parsed syntax.
type checked struct {
	link  Link
	types []raftpb.MessageType
	prob  float64
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRule, fmt.Sprintf(format, args...))
}

func (s Spec) check() (checked, error) {
	var c checked
	if s.ID != "" {
		if err := checkID(s.ID); err != nil {
			return c, err
		}
	}
	if len(s.Description) > maxDescription {
		return c, invalid("description is %d bytes, at most %d", len(s.Description), maxDescription)
	}
	if s.Duration < 0 {
		return c, invalid("duration %v is negative", time.Duration(s.Duration))
	}
	types, err := ParseTypes(s.Types)
	if err != nil {
		return c, err
	}
	c.types = types
	c.prob = 1
	if s.Probability != nil {
		p := *s.Probability
		if !(p > 0 && p <= 1) { // also refuses NaN
			return c, invalid("probability %v: want a number in (0, 1]", p)
		}
		c.prob = p
	}
	if s.Next < 0 {
		return c, invalid("next %d is negative", s.Next)
	}
	switch s.Kind {
	case KindDrop, KindDelay, KindDuplicate:
		link := s.Link
		if link == "" {
			link = Any + "->" + Any
		}
		if c.link, err = ParseLink(link); err != nil {
			return c, err
		}
		if len(s.Groups) > 0 || len(s.Bridge) > 0 {
			return c, invalid("%s takes a link, not groups or a bridge", s.Kind)
		}
		if s.Kind == KindDelay {
			if s.Delay < 0 || s.Jitter < 0 {
				return c, invalid("delay %v and jitter %v must not be negative", time.Duration(s.Delay), time.Duration(s.Jitter))
			}
			if s.Delay == 0 && s.Jitter == 0 {
				return c, invalid("delay needs a delay or a jitter")
			}
			if total := time.Duration(s.Delay + s.Jitter); total > MaxDelay {
				return c, invalid("delay+jitter %v exceeds %v", total, MaxDelay)
			}
		} else if s.Delay != 0 || s.Jitter != 0 {
			return c, invalid("%s takes no delay or jitter", s.Kind)
		}
	case KindPartition, KindIsolateLeader:
		if s.Link != "" {
			return c, invalid("%s takes groups, not a link", s.Kind)
		}
		if s.Probability != nil || s.Next != 0 || s.Delay != 0 || s.Jitter != 0 {
			return c, invalid("%s takes no probability, next, delay or jitter", s.Kind)
		}
		if s.Kind == KindIsolateLeader {
			if len(s.Groups) > 0 || len(s.Bridge) > 0 {
				return c, invalid("isolate-leader takes no groups or bridge: it makes them")
			}
			break
		}
		if len(s.Groups) == 0 {
			return c, invalid("partition needs at least one group")
		}
		for i, g := range s.Groups {
			if len(g) == 0 {
				return c, invalid("partition group %d is empty", i+1)
			}
			for _, m := range g {
				if err := checkRef("partition group", m); err != nil {
					return c, err
				}
			}
		}
		for _, m := range s.Bridge {
			if err := checkRef("bridge", m); err != nil {
				return c, err
			}
		}
	case KindPause, KindClock, KindDisk, KindKill:
		if err := s.checkMember(); err != nil {
			return c, err
		}
	case "":
		return c, invalid("kind is missing: want %s", kindList)
	default:
		return c, invalid("unknown kind %q: want %s", s.Kind, kindList)
	}
	if !memberKind(s.Kind) && s.Kind != KindKill &&
		(s.Member != "" || s.Offset != 0 || s.Drift != nil || s.Mode != "") {
		return c, invalid("%s takes no member, offset, drift or mode", s.Kind)
	}
	return c, nil
}

func checkRef(what, m string) error {
	switch {
	case m == "":
		return invalid("%s: empty member name", what)
	case m == Any:
		return invalid("%s: %q is not a member (wildcards are for links)", what, m)
	case strings.ContainsAny(m, ", |"):
		return invalid("%s: %q is not a member name", what, m)
	}
	return nil
}

func checkID(id string) error {
	if len(id) > maxIDLen {
		return invalid("id is %d bytes, at most %d", len(id), maxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return invalid("id %q: want letters, digits, '.', '_' or '-'", id)
		}
	}
	return nil
}

// Link is a parsed link: From and To are member references or Any; Both
// makes it match the reverse direction too.
type Link struct {
	From, To string
	Both     bool
}

// String writes l in the syntax ParseLink reads.
func (l Link) String() string {
	if l.Both {
		return l.From + "<->" + l.To
	}
	return l.From + "->" + l.To
}

// ParseLink reads "FROM->TO" (one way) or "A<->B" (both ways); each side is
// a member reference or "*". Errors wrap ErrInvalidRule.
func ParseLink(s string) (Link, error) {
	var l Link
	a, b, ok := strings.Cut(s, "<->")
	if ok {
		l.Both = true
	} else if a, b, ok = strings.Cut(s, "->"); !ok {
		return l, invalid("link %q: want FROM->TO or A<->B (members or *)", s)
	}
	l.From, l.To = strings.TrimSpace(a), strings.TrimSpace(b)
	for _, side := range []string{l.From, l.To} {
		if side == "" || strings.ContainsAny(side, "<>,| \t") {
			return l, invalid("link %q: want FROM->TO or A<->B (members or *)", s)
		}
	}
	return l, nil
}

// ParseDelay reads "50ms", "50ms±10ms", "50ms+-10ms" or "50ms+/-10ms" into
// a delay and a jitter. Errors wrap ErrInvalidRule.
func ParseDelay(s string) (delay, jitter time.Duration, err error) {
	base, spread, hasSpread := s, "", false
	for _, sep := range []string{"±", "+/-", "+-"} {
		if a, b, ok := strings.Cut(s, sep); ok {
			base, spread, hasSpread = a, b, true
			break
		}
	}
	delay, err = time.ParseDuration(strings.TrimSpace(base))
	if err != nil || delay < 0 {
		return 0, 0, invalid("delay %q: want DELAY or DELAY±JITTER, e.g. 50ms±10ms", s)
	}
	if hasSpread {
		jitter, err = time.ParseDuration(strings.TrimSpace(spread))
		if err != nil || jitter < 0 {
			return 0, 0, invalid("delay %q: want DELAY or DELAY±JITTER, e.g. 50ms±10ms", s)
		}
	}
	return delay, jitter, nil
}

// FormatDelay writes a delay and jitter as ParseDelay reads them.
func FormatDelay(delay, jitter time.Duration) string {
	if jitter == 0 {
		return delay.String()
	}
	return delay.String() + "±" + jitter.String()
}

// wireTypes are the message types that travel between members, by the
// lower-case name without "Msg".
var wireTypes = func() map[string]raftpb.MessageType {
	m := map[string]raftpb.MessageType{}
	for _, t := range []raftpb.MessageType{
		raftpb.MsgProp, raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgVote, raftpb.MsgVoteResp,
		raftpb.MsgSnap, raftpb.MsgHeartbeat, raftpb.MsgHeartbeatResp, raftpb.MsgTransferLeader,
		raftpb.MsgTimeoutNow, raftpb.MsgReadIndex, raftpb.MsgReadIndexResp, raftpb.MsgPreVote,
		raftpb.MsgPreVoteResp, raftpb.MsgForgetLeader,
	} {
		m[strings.ToLower(strings.TrimPrefix(t.String(), "Msg"))] = t
	}
	return m
}()

// WireTypeNames lists the message types a rule may name, sorted.
func WireTypeNames() []string {
	names := make([]string, 0, len(wireTypes))
	for _, t := range wireTypes {
		names = append(names, t.String())
	}
	slices.Sort(names)
	return names
}

// ParseTypes reads message type names ("MsgVote", "vote", "MSGAPPRESP";
// an element may hold several separated by commas) into distinct types in
// the order given. Errors wrap ErrInvalidRule.
func ParseTypes(names []string) ([]raftpb.MessageType, error) {
	var out []raftpb.MessageType
	for _, n := range names {
		for part := range strings.SplitSeq(n, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			key := strings.ToLower(part)
			key = strings.TrimPrefix(key, "msg")
			t, ok := wireTypes[key]
			if !ok {
				if isLocalName(key) {
					return nil, invalid("message type %q never leaves a member; want one of %s", part, strings.Join(WireTypeNames(), ", "))
				}
				return nil, invalid("unknown message type %q; want one of %s", part, strings.Join(WireTypeNames(), ", "))
			}
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// isLocalName reports whether key (lower case, no "Msg") names a raft
// message type that exists but never crosses the network.
func isLocalName(key string) bool {
	for name := range raftpb.MessageType_value {
		if strings.ToLower(strings.TrimPrefix(name, "Msg")) == key {
			return true
		}
	}
	return false
}

// typeNames writes types as their canonical names.
func typeNames(types []raftpb.MessageType) []string {
	if len(types) == 0 {
		return nil
	}
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = t.String()
	}
	return out
}

// formatProb writes a probability compactly ("0.25").
func formatProb(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
