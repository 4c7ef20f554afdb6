package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/concord-db/concord/internal/faults"
)

// TestFaultCrash checks the kill hook: only this member's id crashes it,
// with faults.KillExitStatus and one log line; without fault injection
// nothing does.
func TestFaultCrash(t *testing.T) {
	now := time.Unix(0, 0)
	var logs bytes.Buffer
	var codes []int
	mf := newMemberFaults(t, &now)
	mf.exit = func(code int) { codes = append(codes, code) }
	s := &Server{id: 1, logger: slog.New(slog.NewTextHandler(&logs, nil)), mfaults: mf}

	if _, self := s.FaultCrash(2); self {
		t.Error("FaultCrash(2) on member 1 reports self")
	}
	if _, self := s.FaultCrash(0); self {
		t.Error("FaultCrash(0) reports self")
	}
	if len(codes) != 0 {
		t.Fatalf("exit called for another member: %v", codes)
	}
	crash, self := s.FaultCrash(1)
	if !self || crash == nil {
		t.Fatal("FaultCrash(1) on member 1 does not report self")
	}
	if len(codes) != 0 {
		t.Fatal("FaultCrash exits before crash is called")
	}
	crash()
	if len(codes) != 1 || codes[0] != faults.KillExitStatus {
		t.Errorf("crash exited with %v, want [%d]", codes, faults.KillExitStatus)
	}
	if n := strings.Count(logs.String(), "killed by a kill rule"); n != 1 {
		t.Errorf("crash logged %d kill lines, want 1:\n%s", n, logs.String())
	}

	off := &Server{id: 1, logger: slog.New(slog.DiscardHandler)}
	if _, self := off.FaultCrash(1); self {
		t.Error("FaultCrash on a member without fault injection reports self")
	}
}
