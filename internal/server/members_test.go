package server

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/raftnode"
)

func voter(id uint64, name string) *command.Member {
	return &command.Member{Id: id, Name: name, PeerUrls: []string{"http://127.0.0.1:" + string(rune('0'+id)) + "000"}}
}

func learner(id uint64, name string) *command.Member {
	m := voter(id, name)
	m.IsLearner = true
	return m
}

func all(uint64) bool { return true }

func only(ids ...uint64) func(uint64) bool {
	return func(id uint64) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
}

func TestValidatePeerURLs(t *testing.T) {
	tests := []struct {
		urls []string
		ok   bool
	}{
		{[]string{"http://127.0.0.1:2380"}, true},
		{[]string{"http://a:1", "http://b:2"}, true},
		{[]string{"http://host:2380/"}, true},
		{nil, false},
		{[]string{"127.0.0.1:2380"}, false},
		{[]string{"https://127.0.0.1:2380"}, true},
		{[]string{"unixs://127.0.0.1:2380"}, false},
		{[]string{"http://127.0.0.1"}, false},
		{[]string{"http://:2380"}, false},
		{[]string{"http://h:2380/path"}, false},
		{[]string{"http://h:1", "http://h:1"}, false},
		{[]string{"::bad"}, false},
	}
	for _, tt := range tests {
		err := ValidatePeerURLs(tt.urls)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrMemberBadURLs)) {
			t.Errorf("ValidatePeerURLs(%q) = %v, want ok=%v", tt.urls, err, tt.ok)
		}
	}
}

func TestNewMemberIDDiffersByTimeAndURL(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a := NewMemberID([]string{"http://a:1"}, "tok", now)
	if b := NewMemberID([]string{"http://a:1"}, "tok", now); a != b {
		t.Errorf("NewMemberID is not deterministic: %x, %x", a, b)
	}
	for _, other := range []uint64{
		NewMemberID([]string{"http://a:1"}, "tok", now.Add(time.Nanosecond)),
		NewMemberID([]string{"http://a:2"}, "tok", now),
		NewMemberID([]string{"http://a:1"}, "tok2", now),
	} {
		if other == a {
			t.Errorf("NewMemberID collided: %x", a)
		}
	}
	if x, y := NewMemberID([]string{"http://a:1", "http://b:1"}, "t", now), NewMemberID([]string{"http://b:1", "http://a:1"}, "t", now); x != y {
		t.Errorf("NewMemberID depends on URL order: %x, %x", x, y)
	}
}

func TestReadyToAddVoter(t *testing.T) {
	tests := []struct {
		name string
		ms   []*command.Member
		want bool
	}{
		{"one started", []*command.Member{voter(1, "a")}, true},
		{"one unstarted", []*command.Member{voter(1, "")}, false},
		{"three started", []*command.Member{voter(1, "a"), voter(2, "b"), voter(3, "c")}, true},
		{"two of three", []*command.Member{voter(1, "a"), voter(2, "b"), voter(3, "")}, false},
		{"two started", []*command.Member{voter(1, "a"), voter(2, "b")}, true},
		{"one of two", []*command.Member{voter(1, "a"), voter(2, "")}, false},
		{"learners do not count", []*command.Member{voter(1, "a"), learner(2, "")}, true},
	}
	for _, tt := range tests {
		if got := readyToAddVoter(tt.ms); got != tt.want {
			t.Errorf("readyToAddVoter(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReadyToPromote(t *testing.T) {
	tests := []struct {
		name string
		ms   []*command.Member
		want bool
	}{
		{"one voter", []*command.Member{voter(1, "a"), learner(9, "l")}, true},
		{"two voters one down", []*command.Member{voter(1, "a"), voter(2, ""), learner(9, "l")}, true},
		{"three voters two unstarted", []*command.Member{voter(1, "a"), voter(2, ""), voter(3, ""), learner(9, "l")}, false},
	}
	for _, tt := range tests {
		if got := readyToPromote(tt.ms); got != tt.want {
			t.Errorf("readyToPromote(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCheckAdd(t *testing.T) {
	three := []*command.Member{voter(1, "a"), voter(2, "b"), voter(3, "c")}
	newVoter := &command.Member{Id: 7, PeerUrls: []string{"http://new:1"}}
	newLearner := &command.Member{Id: 7, PeerUrls: []string{"http://new:1"}, IsLearner: true}
	tests := []struct {
		name      string
		ms        []*command.Member
		m         *command.Member
		strict    bool
		connected func(uint64) bool
		want      error
	}{
		{"voter", three, newVoter, true, all, nil},
		{"learner", three, newLearner, true, all, nil},
		{"existing id", three, &command.Member{Id: 2, PeerUrls: []string{"http://new:1"}}, true, all, ErrMemberExists},
		{"existing url", three, &command.Member{Id: 7, PeerUrls: []string{three[1].PeerUrls[0]}}, true, all, ErrPeerURLExists},
		{"second learner", append([]*command.Member{learner(4, "")}, three...), newLearner, true, all, ErrTooManyLearners},
		{"voter while a learner waits", append([]*command.Member{learner(4, "")}, three...), newVoter, true, all, nil},
		{"unstarted voters", []*command.Member{voter(1, "a"), voter(2, ""), voter(3, "")}, newVoter, true, all, ErrNotEnoughStarted},
		{"unstarted voters, learner", []*command.Member{voter(1, "a"), voter(2, "b"), voter(3, "")}, newLearner, true, all, nil},
		{"unstarted voters, not strict", []*command.Member{voter(1, "a"), voter(2, ""), voter(3, "")}, newVoter, false, all, nil},
		{"peer down", three, newVoter, true, only(1, 2), ErrUnhealthy},
		{"peer down, learner", three, newLearner, true, only(1, 2), ErrUnhealthy},
		{"peer down, not strict", three, newVoter, false, only(1), nil},
	}
	for _, tt := range tests {
		if got := checkAdd(tt.ms, tt.m, tt.strict, tt.connected); !errors.Is(got, tt.want) && got != tt.want {
			t.Errorf("checkAdd(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCheckRemove(t *testing.T) {
	three := []*command.Member{voter(1, "a"), voter(2, "b"), voter(3, "c")}
	tests := []struct {
		name      string
		ms        []*command.Member
		self, id  uint64
		strict    bool
		connected func(uint64) bool
		want      error
	}{
		{"healthy", three, 1, 2, true, all, nil},
		{"self", three, 1, 1, true, all, nil},
		{"unknown", three, 1, 9, true, all, ErrMemberNotFound},
		{"last voter", []*command.Member{voter(1, "a")}, 1, 1, false, all, ErrNotEnoughStarted},
		{"last voter with learner", []*command.Member{voter(1, "a"), learner(2, "")}, 1, 1, true, all, ErrNotEnoughStarted},
		{"learner", []*command.Member{voter(1, "a"), learner(2, "")}, 1, 2, true, only(1), nil},
		{"the dead one", three, 1, 3, true, only(1, 2), nil},
		{"a live one while another is dead", three, 1, 2, true, only(1, 2), ErrNotEnoughStarted},
		{"a live one while another is dead, not strict", three, 1, 2, false, only(1, 2), nil},
		{"no quorum reachable", three, 1, 3, true, only(1), ErrNotEnoughStarted},
		{"two of two", []*command.Member{voter(1, "a"), voter(2, "b")}, 1, 2, true, all, nil},
		{"two, peer dead", []*command.Member{voter(1, "a"), voter(2, "b")}, 1, 2, true, only(1), ErrNotEnoughStarted},
	}
	for _, tt := range tests {
		if got := checkRemove(tt.ms, tt.self, tt.id, tt.strict, tt.connected); got != tt.want {
			t.Errorf("checkRemove(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCheckUpdate(t *testing.T) {
	three := []*command.Member{voter(1, "a"), voter(2, "b"), voter(3, "c")}
	tests := []struct {
		name string
		id   uint64
		urls []string
		want error
	}{
		{"new url", 2, []string{"http://x:1"}, nil},
		{"own url", 2, three[1].PeerUrls, nil},
		{"other's url", 2, three[0].PeerUrls, ErrPeerURLExists},
		{"unknown", 9, []string{"http://x:1"}, ErrMemberNotFound},
	}
	for _, tt := range tests {
		if got := checkUpdate(three, tt.id, tt.urls); got != tt.want {
			t.Errorf("checkUpdate(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCheckPromote(t *testing.T) {
	ms := []*command.Member{voter(1, "a"), voter(2, "b"), learner(9, "l")}
	pr := func(learnerMatch uint64) map[uint64]raftnode.Progress {
		return map[uint64]raftnode.Progress{1: {Match: 100}, 2: {Match: 100}, 9: {Match: learnerMatch, IsLearner: true}}
	}
	tests := []struct {
		name   string
		ms     []*command.Member
		id     uint64
		pr     map[uint64]raftnode.Progress
		strict bool
		want   error
	}{
		{"caught up", ms, 9, pr(100), true, nil},
		{"at 90%", ms, 9, pr(90), true, nil},
		{"at 89%", ms, 9, pr(89), true, ErrLearnerNotReady},
		{"never heard", ms, 9, pr(0), true, ErrLearnerNotReady},
		{"a voter", ms, 2, pr(100), true, ErrMemberNotLearner},
		{"unknown", ms, 7, pr(100), true, ErrMemberNotFound},
		{"no progress yet", ms, 9, map[uint64]raftnode.Progress{1: {Match: 5}}, true, ErrMemberNotFound},
		{"unstarted voters", []*command.Member{voter(1, "a"), voter(2, ""), voter(3, ""), learner(9, "l")}, 9,
			map[uint64]raftnode.Progress{1: {Match: 10}, 9: {Match: 10}}, true, ErrNotEnoughStarted},
		{"unstarted voters, not strict", []*command.Member{voter(1, "a"), voter(2, ""), voter(3, ""), learner(9, "l")}, 9,
			map[uint64]raftnode.Progress{1: {Match: 10}, 9: {Match: 10}}, false, nil},
	}
	for _, tt := range tests {
		if got := checkPromote(tt.ms, 1, tt.id, tt.pr, tt.strict); got != tt.want {
			t.Errorf("checkPromote(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMemberListRoundTrip(t *testing.T) {
	ms := []*command.Member{voter(1, "a"), learner(9, ""), {Id: 5, ClientUrls: []string{"http://c:1"}}}
	b, err := EncodeMemberList(0xabc, ms)
	if err != nil {
		t.Fatal(err)
	}
	cid, got, err := DecodeMemberList(b)
	if err != nil || cid != 0xabc || len(got) != len(ms) {
		t.Fatalf("DecodeMemberList = %x, %d members, %v", cid, len(got), err)
	}
	for i := range ms {
		if !proto.Equal(got[i], ms[i]) {
			t.Errorf("member %d = %v, want %v", i, got[i], ms[i])
		}
	}
	for _, bad := range [][]byte{nil, b[:11], b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		if _, _, err := DecodeMemberList(bad); !errors.Is(err, ErrJoin) {
			t.Errorf("DecodeMemberList(%d bytes) = %v, want ErrJoin", len(bad), err)
		}
	}
}

func TestFindSelf(t *testing.T) {
	ms := []*command.Member{
		{Id: 1, Name: "a", PeerUrls: []string{"http://a:1"}},
		{Id: 2, PeerUrls: []string{"http://new:1"}},
	}
	tests := []struct {
		name, url string
		want      uint64
	}{
		{"new", "http://new:1", 2},
		{"a", "http://a:1", 1}, // a restarted founding member re-joining by mistake
		{"b", "http://a:1", 0}, // someone else's URL
		{"c", "http://c:1", 0}, // not added
	}
	for _, tt := range tests {
		m, err := findSelf(ms, tt.name, tt.url)
		var got uint64
		if err == nil {
			got = m.GetId()
		} else if !errors.Is(err, ErrJoin) {
			t.Errorf("findSelf(%s, %s) error %v is not ErrJoin", tt.name, tt.url, err)
		}
		if got != tt.want {
			t.Errorf("findSelf(%s, %s) = %x, want %x", tt.name, tt.url, got, tt.want)
		}
	}
}
