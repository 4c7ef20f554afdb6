package check

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fw builds a fenced write answered OK.
func fw(client int, tok int64, n int, accepted bool, call, ret, rev int64) FencedWrite {
	return FencedWrite{Client: client, Token: tok, Value: FenceValue(tok, client, n), Call: call, Return: ret,
		Status: OK, Accepted: accepted, Rev: rev}
}

func fenceChange(rev int64, tok int64, client, n int) Change {
	return chPut(rev, "g", FenceValue(tok, client, n))
}

func TestFenceValueOrder(t *testing.T) {
	// The guard compares bytes: values must sort like their tokens, and
	// FenceBound(t) must sit above every value of t and below t+1's.
	for _, tc := range []struct{ lo, hi string }{
		{FenceValue(9, 3, 99), FenceValue(10, 0, 0)},
		{FenceValue(9, 3, 99), FenceBound(9)},
		{FenceBound(9), FenceValue(10, 0, 0)},
		{"00000000000000000000/init", FenceBound(1)},
	} {
		if !(tc.lo < tc.hi) {
			t.Errorf("%q < %q = false, want true", tc.lo, tc.hi)
		}
	}
	tok, c, ok := ParseFenceValue(FenceValue(42, 7, 3))
	if tok != 42 || c != 7 || !ok {
		t.Errorf("ParseFenceValue(FenceValue(42, 7, 3)) = %d, %d, %t; want 42, 7, true", tok, c, ok)
	}
}

func TestFencing(t *testing.T) {
	init0 := chPut(1, "g", "00000000000000000000/init")
	for _, tc := range []struct {
		name   string
		writes []FencedWrite
		c      *Committed
		want   Verdict
		says   string
	}{
		{"holders in token order", []FencedWrite{
			fw(0, 5, 0, true, 10, 11, 6), fw(0, 5, 1, true, 12, 13, 7),
			fw(1, 8, 2, true, 20, 21, 9), fw(0, 5, 3, false, 22, 23, 9),
		}, committed(9, init0, fenceChange(6, 5, 0, 0), fenceChange(7, 5, 0, 1), fenceChange(9, 8, 1, 2)), Valid, ""},
		{"lower token accepted after a higher one", []FencedWrite{
			fw(1, 8, 0, true, 10, 11, 9), fw(0, 5, 1, true, 12, 13, 10),
		}, committed(10, init0, fenceChange(9, 8, 1, 0), fenceChange(10, 5, 0, 1)), Invalid, "two holders at once"},
		{"one token, two clients", nil,
			committed(10, init0, fenceChange(9, 8, 1, 0), fenceChange(10, 8, 0, 1)), Invalid, "one token, two holders"},
		{"acknowledged fenced write lost", []FencedWrite{fw(0, 5, 0, true, 10, 11, 6)},
			committed(6, init0), Invalid, "is lost"},
		{"refused without a higher token", []FencedWrite{fw(0, 5, 0, false, 10, 11, 6)},
			committed(6, init0, fenceChange(6, 3, 1, 0)), Invalid, "refused at revision 6"},
		{"unanswered writes are not judged", []FencedWrite{
			{Client: 0, Token: 5, Value: FenceValue(5, 0, 0), Status: Ambiguous},
		}, committed(1, init0), Valid, ""},
		{"guard deleted", nil, committed(3, init0, chDel(3, "g")), Invalid, "deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Fencing(tc.writes, tc.c, "g")
			if r.Verdict != tc.want {
				t.Fatalf("Fencing = %v, want %v\n%s", r.Verdict, tc.want, r)
			}
			if tc.says != "" && !strings.Contains(r.String(), tc.says) {
				t.Errorf("Fencing report %q does not say %q", r, tc.says)
			}
		})
	}
}

func TestRecordingRoundTrip(t *testing.T) {
	amb := status(put(1, "k", "b", 3, 0, 0), Ambiguous)
	in := &Recording{
		Ops:         []Op{put(0, "k", "a", 1, 2, 2), amb, cas(2, "k", "", "c", false, 4, 5, 3)},
		Fenced:      []FencedWrite{fw(0, 5, 0, true, 10, 11, 6)},
		GuardKey:    "g",
		Watches:     []WatchStream{{Name: "w0", Key: "k", StartRev: 1, Events: []Change{chPut(2, "k", "a")}}},
		Committed:   committed(6, chPut(2, "k", "a")),
		Annotations: []Annotation{{Tag: "nemesis", Start: 1, End: 4, Description: "partition n1"}},
	}
	var buf bytes.Buffer
	if err := in.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"Kind":"cas"`) || !strings.Contains(buf.String(), `"Status":"ambiguous"`) {
		t.Errorf("history.json does not name kinds and statuses in words:\n%s", buf.String())
	}
	out, err := ReadRecording(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	_, err = ReadRecording(strings.NewReader(`{"ops":[{"Kind":"frobnicate"}]}`))
	if !errors.Is(err, ErrBadHistory) {
		t.Errorf("ReadRecording(bad kind) = %v, want ErrBadHistory", err)
	}
}

func TestResolveAmbiguous(t *testing.T) {
	ops := []Op{
		put(0, "k", "a", 1, 2, 2),
		status(put(1, "k", "lost", 3, 0, 0), Ambiguous),
		status(put(2, "k", "took", 3, 0, 0), Ambiguous),
		status(cas(3, "k", "a", "never", false, 3, 0, 0), Pending),
		status(get(4, "k", false, "", 3, 0, 0), Ambiguous),
	}
	c := committed(3, chPut(2, "k", "a"), chPut(3, "k", "took"))
	got := ResolveAmbiguous(ops, c)
	want := []Status{OK, Failed, Ambiguous, Failed, Ambiguous}
	for i, o := range got {
		if o.Status != want[i] {
			t.Errorf("ResolveAmbiguous: %s status %v, want %v", &ops[i], o.Status, want[i])
		}
	}
	if ops[1].Status != Ambiguous {
		t.Errorf("ResolveAmbiguous changed its input")
	}
}

func TestVisualizeAnnotatedShowsAnomaly(t *testing.T) {
	// A read of the old value after a newer write returned: a stale read.
	ops := []Op{
		put(0, "k", "old", 1, 2, 2),
		put(0, "k", "new", 3, 4, 3),
		get(1, "k", true, "old", 5, 6, 2),
	}
	l := Linearizable(ops, 0)
	if l.Verdict != Invalid || len(l.Anomalies) != 1 || l.Anomalies[0].Kind != Get {
		t.Fatalf("Linearizable = %v, anomalies %v; want invalid with the get", l.Verdict, l.Anomalies)
	}
	var buf bytes.Buffer
	anns := []Annotation{{Tag: "nemesis", Start: 2, End: 5, Description: "partition n3 from the rest"}}
	if err := l.VisualizeAnnotated(&buf, anns, DescribeAnomaly); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stale read: get(", "partition n3 from the rest"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("visualization lacks %q", want)
		}
	}
}

func TestStaleReads(t *testing.T) {
	c := committed(4, chPut(2, "k", "a"), chPut(3, "k", "b"), chPut(4, "j", "x"))
	for _, tc := range []struct {
		name string
		ops  []Op
		want int
	}{
		{"fresh read", []Op{put(0, "k", "a", 1, 2, 2), put(0, "k", "b", 3, 4, 3), get(1, "k", true, "b", 5, 6, 3)}, 0},
		{"stale read", []Op{put(0, "k", "a", 1, 2, 2), put(0, "k", "b", 3, 4, 3), get(1, "k", true, "a", 5, 6, 2)}, 1},
		{"absent after a write", []Op{put(0, "k", "a", 1, 2, 2), get(1, "k", false, "", 5, 6, 1)}, 1},
		{"concurrent with the write", []Op{put(0, "k", "a", 1, 2, 2), put(0, "k", "b", 3, 6, 3), get(1, "k", true, "a", 5, 7, 2)}, 0},
		{"serializable reads may lag", []Op{put(0, "k", "a", 1, 2, 2), put(0, "k", "b", 3, 4, 3), sget(1, "k", true, "a", 5, 6, 2)}, 0},
		{"other keys do not count", []Op{put(0, "k", "a", 1, 2, 2), put(0, "j", "x", 3, 4, 4), get(1, "k", true, "a", 5, 6, 4)}, 0},
		{"failed cas is no write", []Op{put(0, "k", "a", 1, 2, 2), cas(0, "k", "z", "b", false, 3, 4, 3), get(1, "k", true, "a", 5, 6, 3)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, stale := StaleReads(tc.ops, c)
			if len(stale) != tc.want || r.Count != tc.want {
				t.Errorf("StaleReads = %d (%s), want %d", len(stale), r, tc.want)
			}
			if tc.want > 0 && (r.Verdict != Invalid || stale[0].Kind != Get) {
				t.Errorf("StaleReads verdict %v, first %v", r.Verdict, stale[0])
			}
		})
	}
}
