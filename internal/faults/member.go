package faults

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DiskMode is what a disk rule does.
type DiskMode string

const (
	// DiskSlow makes each fsync wait the rule's Delay before it runs.
	DiskSlow DiskMode = "slow"
	// DiskFail makes fsync return an error without syncing.
	DiskFail DiskMode = "fail"
	// DiskNoSpace makes writes fail with ENOSPC.
	DiskNoSpace DiskMode = "enospc"
)

// DiskOp is a disk operation a disk rule may act on.
type DiskOp int

const (
	// OpSync is Sync, SyncData or SyncTo of a file or a directory.
	OpSync DiskOp = iota + 1
	// OpWrite is Write or WriteAt.
	OpWrite
)

// Limits of the member faults.
const (
	// MaxClockOffset bounds a clock rule's Offset either way.
	MaxClockOffset = 24 * time.Hour
	// MinDrift and MaxDrift bound a clock rule's Drift.
	MinDrift = 0.01
	MaxDrift = 100.0
)

// ErrDiskFault wraps every error a disk rule injects; an injected ENOSPC
// also matches syscall.ENOSPC (so vfs.IsNoSpaceError holds for it).
var ErrDiskFault = errors.New("faults: injected disk fault")

// DiskVerdict is what the rules do to one disk operation: wait Delay, then
// fail with Err (nil: perform it).
type DiskVerdict struct {
	Delay time.Duration
	Err   error
}

func (s Spec) checkMember() error {
	if err := checkRef(string(s.Kind)+" member", s.Member); err != nil {
		return err
	}
	if s.Link != "" || len(s.Types) > 0 || len(s.Groups) > 0 || len(s.Bridge) > 0 || s.Jitter != 0 {
		return invalid("%s takes a member, not a link, types, groups, bridge or jitter", s.Kind)
	}
	if s.Kind != KindDisk && (s.Probability != nil || s.Next != 0 || s.Delay != 0) {
		return invalid("%s takes no probability, next or delay", s.Kind)
	}
	if s.Kind != KindClock && (s.Offset != 0 || s.Drift != nil) {
		return invalid("%s takes no offset or drift", s.Kind)
	}
	if s.Kind != KindDisk && s.Mode != "" {
		return invalid("%s takes no mode", s.Kind)
	}
	switch s.Kind {
	case KindKill:
		if s.Duration != 0 {
			return invalid("kill takes no duration: it is one-shot (restarting is the supervisor's job)")
		}
	case KindClock:
		if off := time.Duration(s.Offset); off > MaxClockOffset || off < -MaxClockOffset {
			return invalid("clock offset %v exceeds ±%v", off, MaxClockOffset)
		}
		if s.Drift != nil {
			d := *s.Drift
			if !(d >= MinDrift && d <= MaxDrift) { // also refuses NaN
				return invalid("clock drift %v: want a rate in [%v, %v] (1 is real time)", d, MinDrift, MaxDrift)
			}
		}
		if s.Offset == 0 && (s.Drift == nil || *s.Drift == 1) {
			return invalid("clock needs an offset or a drift other than 1")
		}
	case KindDisk:
		switch s.Mode {
		case DiskSlow:
			if s.Delay <= 0 || time.Duration(s.Delay) > MaxDelay {
				return invalid("disk slow needs a delay in (0, %v], got %v", MaxDelay, time.Duration(s.Delay))
			}
		case DiskFail, DiskNoSpace:
			if s.Delay != 0 {
				return invalid("disk %s takes no delay", s.Mode)
			}
		case "":
			return invalid("disk needs a mode: slow, fail or enospc")
		default:
			return invalid("unknown disk mode %q: want slow, fail or enospc", s.Mode)
		}
	}
	return nil
}

// memberKind reports whether k acts on a member rather than its messages.
func memberKind(k Kind) bool { return k == KindPause || k == KindClock || k == KindDisk }

// compileMember fills in a member rule and its canonical Spec.
func compileMember(ru *rule, s Spec, canon *Spec, rv *resolver) error {
	id, name, err := rv.ref(s.Member)
	if err != nil {
		return err
	}
	ru.member, canon.Member = id, name
	switch s.Kind {
	case KindClock:
		ru.offset, canon.Offset = time.Duration(s.Offset), s.Offset
		ru.drift = 1
		if s.Drift != nil {
			d := *s.Drift
			ru.drift, canon.Drift = d, &d
		}
	case KindDisk:
		ru.mode, canon.Mode = s.Mode, s.Mode
		canon.Delay = s.Delay
	}
	return nil
}

// describeMember writes a member rule for people: "pause n1 for 5s",
// "clock n3 +2s, drift 1.5x", "disk n1 slow fsync by 200ms".
func describeMember(b *strings.Builder, s Spec) {
	switch s.Kind {
	case KindPause:
		fmt.Fprintf(b, "pause %s", s.Member)
		if s.Duration > 0 {
			fmt.Fprintf(b, " for %s", time.Duration(s.Duration))
		} else {
			b.WriteString(" until healed")
		}
	case KindClock:
		fmt.Fprintf(b, "clock %s %s", s.Member, FormatOffset(time.Duration(s.Offset)))
		if s.Drift != nil && *s.Drift != 1 {
			fmt.Fprintf(b, ", drift %sx", strconv.FormatFloat(*s.Drift, 'g', -1, 64))
		}
	case KindDisk:
		switch s.Mode {
		case DiskSlow:
			fmt.Fprintf(b, "disk %s slow fsync by %s", s.Member, time.Duration(s.Delay))
		case DiskFail:
			fmt.Fprintf(b, "disk %s fail fsync", s.Member)
		default:
			fmt.Fprintf(b, "disk %s enospc on write", s.Member)
		}
	}
}

// FormatOffset writes a clock offset with its sign ("+2s", "-500ms", "+0s").
func FormatOffset(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}

// Changes returns a channel that is closed at the next change of the
// installed rules (install, removal, heal, expiry swept). Take it before
// reading the state it guards, so no change is missed.
func (p *Plane) Changes() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Paused reports whether a pause rule freezes member at now, and until
// when (zero: until the rule is removed). It is safe for concurrent use.
func (p *Plane) Paused(member uint64, now time.Time) (paused bool, until time.Time) {
	set := p.active.Load()
	if set == nil {
		return false, time.Time{}
	}
	for _, ru := range set.rules {
		if ru.kind != KindPause || ru.member != member || ru.expiredAt(now) {
			continue
		}
		switch {
		case ru.expires.IsZero():
			return true, time.Time{} // nothing ends sooner than never
		case !paused || ru.expires.After(until):
			until = ru.expires
		}
		paused = true
	}
	return paused, until
}

// ClockSkew returns how far member's lease clock is off at now (the
// Plane's clock): the sum, over the clock rules for member, of Offset plus
// (Drift-1) times the time since the rule was installed. Removing a rule
// takes its skew back at once: the clock jumps.
func (p *Plane) ClockSkew(member uint64, now time.Time) time.Duration {
	set := p.active.Load()
	if set == nil {
		return 0
	}
	var skew time.Duration
	for _, ru := range set.rules {
		if ru.kind != KindClock || ru.member != member || ru.expiredAt(now) {
			continue
		}
		skew += ru.offset
		if ru.drift != 1 {
			extra := float64(now.Sub(ru.created)) * (ru.drift - 1)
			skew += time.Duration(max(min(extra, math.MaxInt64/2), math.MinInt64/2))
		}
	}
	return skew
}

// Now is the Plane's clock.
func (p *Plane) Now() time.Time { return p.now() }

// Disk returns what the rules do to one disk operation of member at now:
// slow rules add their Delay to a sync, the first fail rule fails a sync,
// the first enospc rule fails a write. Probability draws come from r (nil:
// math/rand/v2's global source; the caller guards a shared r). It consumes
// "next N" budgets and counts the operations each rule acted on.
func (p *Plane) Disk(member uint64, op DiskOp, now time.Time, r *rand.Rand) DiskVerdict {
	set := p.active.Load()
	if set == nil {
		return DiskVerdict{}
	}
	var v DiskVerdict
	spent := false
	for _, ru := range set.rules {
		if ru.kind != KindDisk || ru.member != member || ru.expiredAt(now) {
			continue
		}
		if (op == OpSync) != (ru.mode == DiskSlow || ru.mode == DiskFail) {
			continue
		}
		fired, last := ru.fire(r)
		if !fired {
			continue
		}
		spent = spent || last
		switch ru.mode {
		case DiskSlow:
			v.Delay += ru.delay
		case DiskFail:
			v.Err = fmt.Errorf("%w: fsync failed by rule %s", ErrDiskFault, ru.spec.ID)
		case DiskNoSpace:
			v.Err = fmt.Errorf("%w: write failed by rule %s: %w", ErrDiskFault, ru.spec.ID, syscall.ENOSPC)
		}
		if v.Err != nil {
			break
		}
	}
	if spent {
		p.retire(now)
	}
	return v
}

// DiskIntercept is Disk with the Plane's clock and random source: the hook
// a filesystem wrapper calls for each operation. With no rule installed it
// is one atomic load.
func (p *Plane) DiskIntercept(member uint64, op DiskOp) DiskVerdict {
	if p.active.Load() == nil {
		return DiskVerdict{}
	}
	p.randMu.Lock()
	defer p.randMu.Unlock()
	return p.Disk(member, op, p.now(), p.rnd)
}
