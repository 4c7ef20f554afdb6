package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func prob(p float64) *float64 { return &p }

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		err  string // "" = valid; else a substring of the error
	}{
		{"drop everything", Spec{Kind: KindDrop}, ""},
		{"drop one way", Spec{Kind: KindDrop, Link: "n1->n2", Probability: prob(0.5)}, ""},
		{"drop next", Spec{Kind: KindDrop, Link: "*->n3", Next: 3, Types: []string{"MsgVote,MsgPreVote"}}, ""},
		{"delay", Spec{Kind: KindDelay, Link: "n1<->n2", Delay: Duration(50 * time.Millisecond), Jitter: Duration(10 * time.Millisecond)}, ""},
		{"jitter only", Spec{Kind: KindDelay, Jitter: Duration(time.Millisecond)}, ""},
		{"duplicate", Spec{Kind: KindDuplicate, Probability: prob(1)}, ""},
		{"partition", Spec{Kind: KindPartition, Groups: [][]string{{"n1", "n2"}, {"n3"}}, Bridge: []string{"n2"}}, ""},
		{"isolate", Spec{Kind: KindIsolateLeader, Duration: Duration(time.Second)}, ""},
		{"given id", Spec{ID: "split-1.a_b", Kind: KindDrop}, ""},

		{"no kind", Spec{}, "kind is missing"},
		{"unknown kind", Spec{Kind: "explode"}, `unknown kind "explode"`},
		{"bad link", Spec{Kind: KindDrop, Link: "n1>n2"}, `link "n1>n2"`},
		{"empty link side", Spec{Kind: KindDrop, Link: "->n2"}, `link "->n2"`},
		{"zero probability", Spec{Kind: KindDrop, Probability: prob(0)}, "probability 0"},
		{"probability above 1", Spec{Kind: KindDrop, Probability: prob(1.5)}, "probability 1.5"},
		{"NaN probability", Spec{Kind: KindDrop, Probability: prob(math.NaN())}, "probability NaN"},
		{"negative next", Spec{Kind: KindDrop, Next: -1}, "next -1"},
		{"negative duration", Spec{Kind: KindDrop, Duration: -1}, "duration"},
		{"delay without delay", Spec{Kind: KindDelay}, "needs a delay"},
		{"negative delay", Spec{Kind: KindDelay, Delay: -1}, "negative"},
		{"huge delay", Spec{Kind: KindDelay, Delay: Duration(time.Hour)}, "exceeds"},
		{"drop with delay", Spec{Kind: KindDrop, Delay: 1}, "no delay"},
		{"drop with groups", Spec{Kind: KindDrop, Groups: [][]string{{"n1"}}}, "not groups"},
		{"partition without groups", Spec{Kind: KindPartition}, "at least one group"},
		{"partition empty group", Spec{Kind: KindPartition, Groups: [][]string{{"n1"}, {}}}, "group 2 is empty"},
		{"partition wildcard", Spec{Kind: KindPartition, Groups: [][]string{{"*"}}}, "wildcards"},
		{"partition with link", Spec{Kind: KindPartition, Link: "n1->n2", Groups: [][]string{{"n1"}}}, "not a link"},
		{"partition with probability", Spec{Kind: KindPartition, Groups: [][]string{{"n1"}}, Probability: prob(0.5)}, "no probability"},
		{"isolate with groups", Spec{Kind: KindIsolateLeader, Groups: [][]string{{"n1"}}}, "makes them"},
		{"unknown type", Spec{Kind: KindDrop, Types: []string{"MsgFoo"}}, `unknown message type "MsgFoo"`},
		{"local type", Spec{Kind: KindDrop, Types: []string{"MsgHup"}}, "never leaves a member"},
		{"bad id", Spec{ID: "a b", Kind: KindDrop}, `id "a b"`},
		{"long id", Spec{ID: strings.Repeat("x", 65), Kind: KindDrop}, "at most 64"},
		{"long description", Spec{Kind: KindDrop, Description: strings.Repeat("x", 300)}, "description"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		if tt.err == "" {
			if err != nil {
				t.Errorf("Validate(%s) = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalidRule) {
			t.Errorf("Validate(%s) = %v, want ErrInvalidRule containing %q", tt.name, err, tt.err)
		}
	}
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		in   string
		want Link
		ok   bool
	}{
		{"n1->n2", Link{"n1", "n2", false}, true},
		{" n1 -> n2 ", Link{"n1", "n2", false}, true},
		{"n1<->n2", Link{"n1", "n2", true}, true},
		{"*->n3", Link{"*", "n3", false}, true},
		{"*<->*", Link{"*", "*", true}, true},
		{"node-1->node-2", Link{"node-1", "node-2", false}, true},
		{"n1-n2", Link{}, false},
		{"n1>n2", Link{}, false},
		{"n1->", Link{}, false},
		{"->", Link{}, false},
		{"a,b->c", Link{}, false},
		{"a->b->c", Link{}, false},
	}
	for _, tt := range tests {
		got, err := ParseLink(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseLink(%q) = %+v, %v; want %+v, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != strings.ReplaceAll(tt.in, " ", "") {
			t.Errorf("ParseLink(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestParseDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		in            string
		delay, jitter time.Duration
		ok            bool
	}{
		{"50ms", 50 * ms, 0, true},
		{"50ms±10ms", 50 * ms, 10 * ms, true},
		{"50ms+-10ms", 50 * ms, 10 * ms, true},
		{"1s+/-250ms", time.Second, 250 * ms, true},
		{" 50ms ± 10ms ", 50 * ms, 10 * ms, true},
		{"0s±5ms", 0, 5 * ms, true},
		{"50", 0, 0, false},
		{"-5ms", 0, 0, false},
		{"50ms±", 0, 0, false},
		{"50ms±-1ms", 0, 0, false},
		{"fast", 0, 0, false},
	}
	for _, tt := range tests {
		d, j, err := ParseDelay(tt.in)
		if (err == nil) != tt.ok || d != tt.delay || j != tt.jitter {
			t.Errorf("ParseDelay(%q) = %v, %v, %v; want %v, %v, ok %t", tt.in, d, j, err, tt.delay, tt.jitter, tt.ok)
		}
	}
	if got := FormatDelay(50*ms, 10*ms); got != "50ms±10ms" {
		t.Errorf("FormatDelay(50ms, 10ms) = %q", got)
	}
}

func TestParseTypes(t *testing.T) {
	tests := []struct {
		in   []string
		want []raftpb.MessageType
		err  string
	}{
		{nil, nil, ""},
		{[]string{"MsgVote"}, []raftpb.MessageType{raftpb.MsgVote}, ""},
		{[]string{"vote,prevote", "MsgVote"}, []raftpb.MessageType{raftpb.MsgVote, raftpb.MsgPreVote}, ""},
		{[]string{"MSGAPPRESP", " heartbeat "}, []raftpb.MessageType{raftpb.MsgAppResp, raftpb.MsgHeartbeat}, ""},
		{[]string{"MsgSnap,MsgHeartbeatResp"}, []raftpb.MessageType{raftpb.MsgSnap, raftpb.MsgHeartbeatResp}, ""},
		{[]string{"MsgBeat"}, nil, "never leaves"},
		{[]string{"MsgStorageAppend"}, nil, "never leaves"},
		{[]string{"ping"}, nil, "unknown message type"},
	}
	for _, tt := range tests {
		got, err := ParseTypes(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTypes(%q) = %v, %v; want error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseTypes(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if names := WireTypeNames(); !slices.Contains(names, "MsgPreVote") || slices.Contains(names, "MsgHup") {
		t.Errorf("WireTypeNames() = %v", names)
	}
}

func TestSpecJSON(t *testing.T) {
	in := `{"kind":"delay","link":"n1->n2","delay":"50ms","jitter":"10ms","duration":"1m","types":["MsgApp"]}`
	var s Spec
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Delay != Duration(50*time.Millisecond) || s.Jitter != Duration(10*time.Millisecond) || s.Duration != Duration(time.Minute) {
		t.Errorf("Unmarshal(%s) = %+v", in, s)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"delay","link":"n1->n2","types":["MsgApp"],"delay":"50ms","jitter":"10ms","duration":"1m0s"}` + "\n"; out.String() != want {
		t.Errorf("Marshal = %s, want %s", out.String(), want)
	}
	if err := json.Unmarshal([]byte(`{"kind":"delay","delay":50}`), &s); err == nil {
		t.Error("Unmarshal of a numeric delay succeeded; want an error")
	}
	if err := json.Unmarshal([]byte(`{"kind":"delay","delay":"soon"}`), &s); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("Unmarshal of delay \"soon\" = %v; want an error naming it", err)
	}
}
