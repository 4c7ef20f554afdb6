package apply

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/concord-db/concord/internal/command"
)

func (h *harness) alarm(action command.AlarmRequest_AlarmAction, member uint64, t command.AlarmRequest_AlarmType) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_Alarm{Alarm: &command.AlarmRequest{Action: action, MemberId: member, Alarm: t}}})
}

func alarmsString(list []*command.AlarmMember) string {
	var parts []string
	for _, m := range list {
		parts = append(parts, fmt.Sprintf("%d:%s", m.GetMemberId(), m.GetAlarm()))
	}
	return strings.Join(parts, " ")
}

func TestAlarmActivateDeactivateGet(t *testing.T) {
	const (
		get = command.AlarmRequest_GET
		act = command.AlarmRequest_ACTIVATE
		dea = command.AlarmRequest_DEACTIVATE
	)
	steps := []struct {
		action   command.AlarmRequest_AlarmAction
		member   uint64
		alarm    command.AlarmRequest_AlarmType
		wantResp string
		wantList string
	}{
		{get, 0, command.AlarmRequest_NONE, "", ""},
		{act, 7, command.AlarmRequest_NOSPACE, "7:NOSPACE", "7:NOSPACE"},
		{act, 7, command.AlarmRequest_NOSPACE, "7:NOSPACE", "7:NOSPACE"}, // already active: answered, not doubled
		{act, 3, command.AlarmRequest_NOSPACE, "3:NOSPACE", "3:NOSPACE 7:NOSPACE"},
		{act, 9, command.AlarmRequest_CORRUPT, "9:CORRUPT", "3:NOSPACE 7:NOSPACE 9:CORRUPT"},
		{act, 1, command.AlarmRequest_NONE, "", "3:NOSPACE 7:NOSPACE 9:CORRUPT"}, // NONE is ignored
		{get, 0, command.AlarmRequest_NONE, "3:NOSPACE 7:NOSPACE 9:CORRUPT", "3:NOSPACE 7:NOSPACE 9:CORRUPT"},
		{dea, 7, command.AlarmRequest_NOSPACE, "7:NOSPACE", "3:NOSPACE 9:CORRUPT"},
		{dea, 7, command.AlarmRequest_NOSPACE, "", "3:NOSPACE 9:CORRUPT"}, // not active: empty answer
		{dea, 3, command.AlarmRequest_CORRUPT, "", "3:NOSPACE 9:CORRUPT"},
	}
	h := newHarness(t)
	h.put("k", "v")
	for i, s := range steps {
		res := h.alarm(s.action, s.member, s.alarm)
		if res.Err != nil {
			t.Fatalf("step %d: Alarm(%v %d %v) err = %v", i, s.action, s.member, s.alarm, res.Err)
		}
		if res.Rev != 2 {
			t.Errorf("step %d: Alarm rev = %d, want 2 (alarms do not change the revision)", i, res.Rev)
		}
		if got := alarmsString(res.Resp.(*command.AlarmResponse).GetAlarms()); got != s.wantResp {
			t.Errorf("step %d: Alarm(%v %d %v) answered %q, want %q", i, s.action, s.member, s.alarm, got, s.wantResp)
		}
		if got := alarmsString(h.a.Alarms()); got != s.wantList {
			t.Errorf("step %d: Alarms() = %q, want %q", i, got, s.wantList)
		}
	}
}

func TestAdmitUnderAlarms(t *testing.T) {
	put := &command.Command{Op: &command.Command_Put{Put: &command.PutRequest{Key: []byte("a"), Value: []byte("b")}}}
	del := &command.Command{Op: &command.Command_DeleteRange{DeleteRange: &command.DeleteRangeRequest{Key: []byte("a")}}}
	txnPut := &command.Command{Op: &command.Command_Txn{Txn: &command.TxnRequest{Failure: []*command.RequestOp{
		{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: []byte("a")}}}}}}}
	txnDel := &command.Command{Op: &command.Command_Txn{Txn: &command.TxnRequest{Success: []*command.RequestOp{
		{Request: &command.RequestOp_RequestDeleteRange{RequestDeleteRange: &command.DeleteRangeRequest{Key: []byte("a")}}}}}}}
	compact := &command.Command{Op: &command.Command_Compaction{Compaction: &command.CompactionRequest{Revision: 1}}}
	grant := &command.Command{Op: &command.Command_LeaseGrant{LeaseGrant: &command.LeaseGrantRequest{Id: 5, Ttl: 10}}}
	revoke := &command.Command{Op: &command.Command_LeaseRevoke{LeaseRevoke: &command.LeaseRevokeRequest{Id: 5}}}
	alarm := &command.Command{Op: &command.Command_Alarm{Alarm: &command.AlarmRequest{}}}
	cases := []struct {
		name    string
		cmd     *command.Command
		nospace error
		corrupt error
	}{
		{"put", put, ErrNoSpace, ErrCorrupt},
		{"delete", del, nil, ErrCorrupt},
		{"txn with a put", txnPut, ErrNoSpace, ErrCorrupt},
		{"txn deleting only", txnDel, nil, ErrCorrupt},
		{"compaction", compact, nil, ErrCorrupt},
		{"lease grant", grant, ErrNoSpace, ErrCorrupt},
		{"lease revoke", revoke, nil, ErrCorrupt},
		{"alarm", alarm, nil, nil},
	}
	for _, c := range cases {
		h := newHarness(t)
		if err := h.a.Admit(c.cmd); err != nil {
			t.Errorf("Admit(%s) without alarms = %v, want nil", c.name, err)
		}
		h.alarm(command.AlarmRequest_ACTIVATE, 1, command.AlarmRequest_NOSPACE)
		if err := h.a.Admit(c.cmd); !errors.Is(err, c.nospace) || (err == nil) != (c.nospace == nil) {
			t.Errorf("Admit(%s) under NOSPACE = %v, want %v", c.name, err, c.nospace)
		}
		h.alarm(command.AlarmRequest_DEACTIVATE, 1, command.AlarmRequest_NOSPACE)
		h.alarm(command.AlarmRequest_ACTIVATE, 2, command.AlarmRequest_CORRUPT)
		if err := h.a.Admit(c.cmd); !errors.Is(err, c.corrupt) || (err == nil) != (c.corrupt == nil) {
			t.Errorf("Admit(%s) under CORRUPT = %v, want %v", c.name, err, c.corrupt)
		}
	}
}

func TestApplyRefusesUnderNoSpace(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.alarm(command.AlarmRequest_ACTIVATE, 1, command.AlarmRequest_NOSPACE)
	if res := h.put("b", "2"); !errors.Is(res.Err, ErrNoSpace) || res.Rev != 2 {
		t.Fatalf("Put under NOSPACE = rev %d err %v, want rev 2 and %v", res.Rev, res.Err, ErrNoSpace)
	}
	if res := h.del(&command.DeleteRangeRequest{Key: []byte("a")}); res.Err != nil || res.Rev != 3 {
		t.Fatalf("Delete under NOSPACE = rev %d err %v, want rev 3 and nil", res.Rev, res.Err)
	}
	if res := h.compact(3); res.Err != nil {
		t.Fatalf("Compact under NOSPACE err = %v", res.Err)
	}
	h.alarm(command.AlarmRequest_DEACTIVATE, 1, command.AlarmRequest_NOSPACE)
	if res := h.put("b", "2"); res.Err != nil || res.Rev != 4 {
		t.Fatalf("Put after disarm = rev %d err %v, want rev 4 and nil", res.Rev, res.Err)
	}
}

func TestQuotaCost(t *testing.T) {
	put := func(k, v string) *command.RequestOp {
		return &command.RequestOp{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: []byte(k), Value: []byte(v)}}}
	}
	cases := []struct {
		name string
		cmd  *command.Command
		want int64
	}{
		{"put", &command.Command{Op: &command.Command_Put{Put: &command.PutRequest{Key: []byte("ab"), Value: []byte("xyz")}}}, 256 + 5},
		{"delete", &command.Command{Op: &command.Command_DeleteRange{DeleteRange: &command.DeleteRangeRequest{Key: []byte("a")}}}, 0},
		{"txn: the costlier branch", &command.Command{Op: &command.Command_Txn{Txn: &command.TxnRequest{
			Success: []*command.RequestOp{put("a", "1")},
			Failure: []*command.RequestOp{put("a", "1"), put("b", "22")},
		}}}, 2*256 + 2 + 3},
		{"nested txn", &command.Command{Op: &command.Command_Txn{Txn: &command.TxnRequest{
			Success: []*command.RequestOp{{Request: &command.RequestOp_RequestTxn{RequestTxn: &command.TxnRequest{Success: []*command.RequestOp{put("k", "")}}}}},
		}}}, 256 + 1},
		{"lease grant", &command.Command{Op: &command.Command_LeaseGrant{LeaseGrant: &command.LeaseGrantRequest{Ttl: 5}}}, 64},
		{"alarm", &command.Command{Op: &command.Command_Alarm{Alarm: &command.AlarmRequest{}}}, 0},
	}
	for _, c := range cases {
		if got := QuotaCost(c.cmd); got != c.want {
			t.Errorf("QuotaCost(%s) = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestSnapshotKeepsAlarms(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.alarm(command.AlarmRequest_ACTIVATE, 5, command.AlarmRequest_CORRUPT)
	h.alarm(command.AlarmRequest_ACTIVATE, 4, command.AlarmRequest_NOSPACE)
	blob, err := h.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := New(nil)
	if err := b.Restore(blob); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got, want := alarmsString(b.Alarms()), "4:NOSPACE 5:CORRUPT"; got != want {
		t.Errorf("restored Alarms() = %q, want %q", got, want)
	}
	if !b.HasAlarm(command.AlarmRequest_NOSPACE) || !b.HasAlarm(command.AlarmRequest_CORRUPT) {
		t.Errorf("restored HasAlarm = false, want true for both")
	}
	again, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(blob) {
		t.Errorf("Snapshot of the restored state differs from the original")
	}
}

func TestRebase(t *testing.T) {
	h := newHarness(t)
	h.put("a", "1")
	h.put("b", "2")
	h.alarm(command.AlarmRequest_ACTIVATE, 5, command.AlarmRequest_NOSPACE)
	blob, err := h.a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	members := []*command.Member{{Id: 11, Name: "x", PeerUrls: []string{"http://127.0.0.1:1"}}, {Id: 12, Name: "y"}}
	out, rev, err := Rebase(blob, 2, members)
	if err != nil {
		t.Fatalf("Rebase: %v", err)
	}
	if rev != 3 {
		t.Errorf("Rebase rev = %d, want 3", rev)
	}
	b := New(nil)
	if err := b.Restore(out); err != nil {
		t.Fatal(err)
	}
	if b.AppliedIndex() != 2 {
		t.Errorf("AppliedIndex = %d, want 2", b.AppliedIndex())
	}
	if len(b.Alarms()) != 0 {
		t.Errorf("Alarms = %v, want none", b.Alarms())
	}
	if ms := b.Members(); len(ms) != 2 || ms[0].GetName() != "x" || ms[1].GetName() != "y" {
		t.Errorf("Members = %v, want x and y", ms)
	}
	h1, _, _ := h.a.Hash(0)
	h2, _, _ := b.Hash(0)
	if h1 != h2 {
		t.Errorf("keyspace hash changed by Rebase: %d != %d", h1, h2)
	}
	if _, _, err := Rebase(blob[:len(blob)-1], 2, members); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("Rebase(truncated) err = %v, want %v", err, ErrCorruptSnapshot)
	}
}
