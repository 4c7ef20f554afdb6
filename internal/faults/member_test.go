package faults

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestMemberSpecValidate(t *testing.T) {
	ms := func(d time.Duration) Duration { return Duration(d) }
	tests := []struct {
		name string
		spec Spec
		err  string // "" = valid; else a substring of the error
	}{
		{"pause", Spec{Kind: KindPause, Member: "n1", Duration: ms(5 * time.Second)}, ""},
		{"pause until healed", Spec{Kind: KindPause, Member: "leader"}, ""},
		{"clock offset", Spec{Kind: KindClock, Member: "n3", Offset: ms(2 * time.Second)}, ""},
		{"clock negative offset", Spec{Kind: KindClock, Member: "n3", Offset: ms(-time.Second)}, ""},
		{"clock drift", Spec{Kind: KindClock, Member: "n3", Drift: prob(1.5)}, ""},
		{"disk slow", Spec{Kind: KindDisk, Member: "n1", Mode: DiskSlow, Delay: ms(200 * time.Millisecond)}, ""},
		{"disk fail next", Spec{Kind: KindDisk, Member: "n1", Mode: DiskFail, Next: 1}, ""},
		{"disk enospc", Spec{Kind: KindDisk, Member: "n1", Mode: DiskNoSpace, Probability: prob(0.5)}, ""},

		{"pause no member", Spec{Kind: KindPause}, "empty member"},
		{"pause wildcard", Spec{Kind: KindPause, Member: "*"}, "not a member"},
		{"pause with link", Spec{Kind: KindPause, Member: "n1", Link: "n1->n2"}, "not a link"},
		{"pause with types", Spec{Kind: KindPause, Member: "n1", Types: []string{"MsgApp"}}, "not a link"},
		{"pause with next", Spec{Kind: KindPause, Member: "n1", Next: 1}, "no probability, next or delay"},
		{"pause with offset", Spec{Kind: KindPause, Member: "n1", Offset: 1}, "no offset"},
		{"pause with mode", Spec{Kind: KindPause, Member: "n1", Mode: DiskFail}, "no mode"},
		{"clock nothing", Spec{Kind: KindClock, Member: "n1"}, "needs an offset or a drift"},
		{"clock drift 1", Spec{Kind: KindClock, Member: "n1", Drift: prob(1)}, "needs an offset or a drift"},
		{"clock zero drift", Spec{Kind: KindClock, Member: "n1", Drift: prob(0)}, "clock drift 0"},
		{"clock NaN drift", Spec{Kind: KindClock, Member: "n1", Drift: prob(math.NaN())}, "clock drift NaN"},
		{"clock huge offset", Spec{Kind: KindClock, Member: "n1", Offset: ms(25 * time.Hour)}, "exceeds"},
		{"clock with delay", Spec{Kind: KindClock, Member: "n1", Offset: 1, Delay: 1}, "no probability, next or delay"},
		{"disk no mode", Spec{Kind: KindDisk, Member: "n1"}, "needs a mode"},
		{"disk bad mode", Spec{Kind: KindDisk, Member: "n1", Mode: "melt"}, `unknown disk mode "melt"`},
		{"disk slow without delay", Spec{Kind: KindDisk, Member: "n1", Mode: DiskSlow}, "needs a delay"},
		{"disk fail with delay", Spec{Kind: KindDisk, Member: "n1", Mode: DiskFail, Delay: 1}, "takes no delay"},
		{"disk with drift", Spec{Kind: KindDisk, Member: "n1", Mode: DiskFail, Drift: prob(2)}, "no offset or drift"},
		{"drop with member", Spec{Kind: KindDrop, Member: "n1"}, "takes no member"},
		{"partition with mode", Spec{Kind: KindPartition, Groups: [][]string{{"n1"}}, Mode: DiskFail}, "takes no member"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: Validate(%+v) = %v, want nil", tt.name, tt.spec, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalidRule)):
			t.Errorf("%s: Validate(%+v) = %v, want ErrInvalidRule containing %q", tt.name, tt.spec, err, tt.err)
		}
	}
}

func TestMemberInstallCanonical(t *testing.T) {
	tests := []struct {
		spec Spec
		desc string
		want Spec // the fields compared: Member, Offset, Drift, Mode, Delay
	}{
		{Spec{Kind: KindPause, Member: "leader", Duration: Duration(5 * time.Second)}, "pause n2 for 5s", Spec{Member: "n2"}},
		{Spec{Kind: KindPause, Member: "1"}, "pause n1 until healed", Spec{Member: "n1"}},
		{Spec{Kind: KindClock, Member: "n3", Offset: Duration(2 * time.Second)}, "clock n3 +2s", Spec{Member: "n3", Offset: Duration(2 * time.Second)}},
		{Spec{Kind: KindClock, Member: "n3", Drift: prob(1.5), Duration: Duration(time.Minute)}, "clock n3 +0s, drift 1.5x, expires after 1m0s", Spec{Member: "n3", Drift: prob(1.5)}},
		{Spec{Kind: KindDisk, Member: "n1", Mode: DiskSlow, Delay: Duration(200 * time.Millisecond)}, "disk n1 slow fsync by 200ms", Spec{Member: "n1", Mode: DiskSlow, Delay: Duration(200 * time.Millisecond)}},
		{Spec{Kind: KindDisk, Member: "n1", Mode: DiskFail, Next: 1}, "disk n1 fail fsync, next 1", Spec{Member: "n1", Mode: DiskFail}},
		{Spec{Kind: KindDisk, Member: "n2", Mode: DiskNoSpace}, "disk n2 enospc on write", Spec{Member: "n2", Mode: DiskNoSpace}},
	}
	for _, tt := range tests {
		p := newTestPlane(t, threeMembers())
		info, err := p.Install(tt.spec)
		if err != nil {
			t.Errorf("Install(%+v) = %v", tt.spec, err)
			continue
		}
		got := info.Spec
		driftOK := (got.Drift == nil) == (tt.want.Drift == nil) && (got.Drift == nil || *got.Drift == *tt.want.Drift)
		if info.Description != tt.desc || got.Member != tt.want.Member || got.Offset != tt.want.Offset ||
			got.Mode != tt.want.Mode || got.Delay != tt.want.Delay || !driftOK {
			t.Errorf("Install(%+v) = %+v (%q), want %+v (%q)", tt.spec, got, info.Description, tt.want, tt.desc)
		}
		// The canonical form installs the same rule elsewhere.
		again := newTestPlane(t, threeMembers())
		if info2, err := again.Install(info.Spec); err != nil || info2.Description != info.Description {
			t.Errorf("reinstalling %+v = %+v, %v", info.Spec, info2, err)
		}
	}
	p := newTestPlane(t, threeMembers())
	if _, err := p.Install(Spec{Kind: KindPause, Member: "n9"}); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("Install(pause n9) = %v, want ErrUnknownMember", err)
	}
}

func TestPaused(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	start := p.clock.now()
	changed := p.Changes()
	if paused, _ := p.Paused(1, start); paused {
		t.Fatal("Paused(n1) before any rule = true")
	}
	p.mustInstall(t, Spec{ID: "p", Kind: KindPause, Member: "n1", Duration: Duration(5 * time.Second)})
	select {
	case <-changed:
	default:
		t.Fatal("Changes() not closed by an install")
	}
	tests := []struct {
		member uint64
		at     time.Duration
		paused bool
		until  time.Duration // from start; meaningful when paused
	}{
		{1, 0, true, 5 * time.Second},
		{2, 0, false, 0},
		{1, 4999 * time.Millisecond, true, 5 * time.Second},
		{1, 5 * time.Second, false, 0},
	}
	for _, tt := range tests {
		paused, until := p.Paused(tt.member, start.Add(tt.at))
		if paused != tt.paused || paused && !until.Equal(start.Add(tt.until)) {
			t.Errorf("Paused(%d, +%v) = %v, %v; want %v, +%v", tt.member, tt.at, paused, until.Sub(start), tt.paused, tt.until)
		}
	}
	// A pause without duration holds until removed; it wins over a shorter one.
	p.mustInstall(t, Spec{ID: "forever", Kind: KindPause, Member: "n1"})
	if paused, until := p.Paused(1, start.Add(time.Second)); !paused || !until.IsZero() {
		t.Errorf("Paused with an endless pause = %v, %v; want true, zero", paused, until)
	}
	changed = p.Changes()
	p.Heal()
	select {
	case <-changed:
	default:
		t.Fatal("Changes() not closed by heal")
	}
	if paused, _ := p.Paused(1, start.Add(time.Second)); paused {
		t.Error("Paused after heal = true")
	}
}

func TestClockSkew(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	t0 := p.clock.now()
	p.mustInstall(t, Spec{Kind: KindClock, Member: "n3", Offset: Duration(2 * time.Second)})
	p.mustInstall(t, Spec{Kind: KindClock, Member: "n2", Drift: prob(1.5), Duration: Duration(time.Minute)})
	p.mustInstall(t, Spec{Kind: KindClock, Member: "n2", Offset: Duration(-time.Second), Drift: prob(0.5)})
	tests := []struct {
		member uint64
		at     time.Duration
		want   time.Duration
	}{
		{3, 0, 2 * time.Second},
		{3, time.Hour, 2 * time.Second},
		{1, time.Second, 0},
		// n2: +0.5s per second, then -1s and -0.5s per second: -1s net drift 0.
		{2, 0, -time.Second},
		{2, 10 * time.Second, -time.Second},
		// After the drift rule expires only the slow one is left.
		{2, 2 * time.Minute, -time.Second - time.Minute},
	}
	for _, tt := range tests {
		if got := p.ClockSkew(tt.member, t0.Add(tt.at)); got != tt.want {
			t.Errorf("ClockSkew(%d, +%v) = %v, want %v", tt.member, tt.at, got, tt.want)
		}
	}
	// Clock and pause rules never touch messages.
	p.mustInstall(t, Spec{Kind: KindPause, Member: "n1"})
	if v := p.Decide(1, 2, raftpb.MsgApp, t0, nil); v != (Verdict{}) {
		t.Errorf("Decide with only member rules = %+v, want zero", v)
	}
}

func TestDisk(t *testing.T) {
	p := newTestPlane(t, threeMembers())
	now := p.clock.now()
	p.mustInstall(t, Spec{ID: "slow", Kind: KindDisk, Member: "n1", Mode: DiskSlow, Delay: Duration(200 * time.Millisecond)})
	p.mustInstall(t, Spec{ID: "slow2", Kind: KindDisk, Member: "n1", Mode: DiskSlow, Delay: Duration(50 * time.Millisecond)})
	p.mustInstall(t, Spec{ID: "fail", Kind: KindDisk, Member: "n2", Mode: DiskFail, Next: 1})
	p.mustInstall(t, Spec{ID: "full", Kind: KindDisk, Member: "n3", Mode: DiskNoSpace})
	tests := []struct {
		member uint64
		op     DiskOp
		delay  time.Duration
		err    error // nil: no error
	}{
		{1, OpSync, 250 * time.Millisecond, nil},
		{1, OpWrite, 0, nil},
		{2, OpWrite, 0, nil},
		{2, OpSync, 0, ErrDiskFault},
		{2, OpSync, 0, nil}, // next 1 is spent
		{3, OpSync, 0, nil},
		{3, OpWrite, 0, syscall.ENOSPC},
		{3, OpWrite, 0, ErrDiskFault},
		{4, OpWrite, 0, nil},
	}
	for i, tt := range tests {
		v := p.Disk(tt.member, tt.op, now, nil)
		if v.Delay != tt.delay || (tt.err == nil) != (v.Err == nil) || tt.err != nil && !errors.Is(v.Err, tt.err) {
			t.Errorf("%d: Disk(%d, %v) = %+v, want delay %v, error %v", i, tt.member, tt.op, v, tt.delay, tt.err)
		}
	}
	ids := map[string]uint64{}
	for _, info := range p.List() {
		ids[info.ID] = info.Fired
	}
	if _, ok := ids["fail"]; ok || ids["slow"] != 1 || ids["full"] != 2 {
		t.Errorf("after the ops, rules and fired counts = %v; want fail retired, slow 1, full 2", ids)
	}
	// Disk rules never touch messages.
	if v := p.Decide(3, 1, raftpb.MsgApp, now, nil); v != (Verdict{}) {
		t.Errorf("Decide with only disk rules = %+v, want zero", v)
	}
}
