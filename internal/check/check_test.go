package check

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Shorthands for hand-written histories. Times are small integers.
func put(c int, key, val string, call, ret, rev int64) Op {
	return Op{Client: c, Kind: Put, Key: key, Value: val, Call: call, Return: ret, Status: OK, Rev: rev}
}

func get(c int, key string, found bool, got string, call, ret, rev int64) Op {
	return Op{Client: c, Kind: Get, Key: key, Found: found, Got: got, Call: call, Return: ret, Status: OK, Rev: rev}
}

func sget(c int, key string, found bool, got string, call, ret, rev int64) Op {
	o := get(c, key, found, got, call, ret, rev)
	o.Serializable = true
	return o
}

func cas(c int, key, expect, val string, ok bool, call, ret, rev int64) Op {
	o := Op{Client: c, Kind: CAS, Key: key, Expect: expect, Value: val, Succeeded: ok, Call: call, Return: ret, Status: OK, Rev: rev}
	if expect == "" {
		o.ExpectAbsent = true
	}
	return o
}

func del(c int, key string, n int64, call, ret, rev int64) Op {
	return Op{Client: c, Kind: Delete, Key: key, Deleted: n, Call: call, Return: ret, Status: OK, Rev: rev}
}

func status(o Op, s Status) Op {
	o.Status = s
	return o
}

func TestLinearizable(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want Verdict
	}{
		{"empty", nil, Valid},
		{"put then get", []Op{put(0, "k", "a", 0, 10, 2), get(1, "k", true, "a", 20, 30, 2)}, Valid},
		{"get of absent key", []Op{get(0, "k", false, "", 0, 1, 1)}, Valid},
		{"stale read after put returned", []Op{put(0, "k", "a", 0, 10, 2), get(1, "k", false, "", 20, 30, 1)}, Invalid},
		{"read older value after newer acknowledged", []Op{
			put(0, "k", "a", 0, 10, 2), put(0, "k", "b", 11, 20, 3), get(1, "k", true, "a", 30, 40, 2),
		}, Invalid},
		{"concurrent put may be seen", []Op{put(0, "k", "a", 0, 100, 2), get(1, "k", true, "a", 10, 20, 2)}, Valid},
		{"concurrent put may be missed", []Op{put(0, "k", "a", 0, 100, 2), get(1, "k", false, "", 10, 20, 1)}, Valid},
		{"value never written", []Op{get(0, "k", true, "z", 0, 1, 5)}, Invalid},
		{"ambiguous put seen later", []Op{status(put(0, "k", "a", 0, 0, 0), Ambiguous), get(1, "k", true, "a", 50, 60, 2)}, Valid},
		{"ambiguous put never seen", []Op{status(put(0, "k", "a", 0, 0, 0), Ambiguous), get(1, "k", false, "", 50, 60, 1)}, Valid},
		{"pending put counts as ambiguous", []Op{status(put(0, "k", "a", 0, 0, 0), Pending), get(1, "k", true, "a", 50, 60, 2)}, Valid},
		{"ambiguous put cannot take effect before its call", []Op{get(1, "k", true, "a", 0, 10, 2), status(put(0, "k", "a", 20, 0, 0), Ambiguous)}, Invalid},
		{"failed put seen", []Op{status(put(0, "k", "a", 0, 5, 0), Failed), get(1, "k", true, "a", 50, 60, 2)}, Invalid},
		{"ambiguous put flip-flop", []Op{
			status(put(0, "k", "a", 0, 0, 0), Ambiguous),
			get(1, "k", true, "a", 10, 20, 2),
			get(1, "k", false, "", 30, 40, 2),
		}, Invalid},
		{"two cas from absent both succeed", []Op{
			cas(0, "k", "", "a", true, 0, 10, 2), cas(1, "k", "", "b", true, 20, 30, 3),
		}, Invalid},
		{"cas chain", []Op{
			cas(0, "k", "", "a", true, 0, 10, 2), cas(1, "k", "", "b", false, 20, 30, 2),
			cas(1, "k", "a", "b", true, 40, 50, 3), get(0, "k", true, "b", 60, 70, 3),
		}, Valid},
		{"cas failed although value matched", []Op{put(0, "k", "a", 0, 10, 2), cas(1, "k", "a", "b", false, 20, 30, 2)}, Invalid},
		{"ambiguous cas may apply", []Op{
			put(0, "k", "a", 0, 10, 2), status(cas(1, "k", "a", "b", false, 20, 0, 0), Ambiguous), get(0, "k", true, "b", 40, 50, 3),
		}, Valid},
		{"ambiguous cas cannot apply when comparison is false", []Op{
			put(0, "k", "x", 0, 10, 2), status(cas(1, "k", "a", "b", false, 20, 0, 0), Ambiguous), get(0, "k", true, "b", 40, 50, 3),
		}, Invalid},
		{"delete then read", []Op{put(0, "k", "a", 0, 10, 2), del(0, "k", 1, 20, 30, 3), get(1, "k", false, "", 40, 50, 3)}, Valid},
		{"delete reports nothing deleted", []Op{put(0, "k", "a", 0, 10, 2), del(0, "k", 0, 20, 30, 2)}, Invalid},
		{"read resurrects deleted value", []Op{put(0, "k", "a", 0, 10, 2), del(0, "k", 1, 20, 30, 3), get(1, "k", true, "a", 40, 50, 3)}, Invalid},
		{"serializable stale read is not judged here", []Op{put(0, "k", "a", 0, 10, 2), sget(1, "k", false, "", 20, 30, 1)}, Valid},
		{"keys are independent", []Op{put(0, "k", "a", 0, 10, 2), get(1, "j", false, "", 20, 30, 2)}, Valid},
		{"violation on one key of many", []Op{
			put(0, "j", "x", 0, 10, 2), put(0, "k", "a", 11, 20, 3), get(1, "j", true, "x", 30, 40, 3), get(1, "k", false, "", 30, 40, 3),
		}, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Linearizable(tt.ops, 10*time.Second)
			if got.Verdict != tt.want {
				t.Errorf("Linearizable(%s) = %v, want %v\n%s", tt.name, got.Verdict, tt.want, got)
			}
			if got.Verdict == Invalid && len(got.Problems) == 0 {
				t.Errorf("Linearizable(%s): invalid without a problem description", tt.name)
			}
		})
	}
}

func TestLinearizableIllegalNamesKey(t *testing.T) {
	ops := []Op{put(0, "good", "x", 0, 10, 2), put(0, "bad", "a", 11, 20, 3), get(1, "bad", false, "", 30, 40, 3)}
	res := Linearizable(ops, 10*time.Second)
	if res.Verdict != Invalid {
		t.Fatalf("Linearizable = %v, want invalid", res.Verdict)
	}
	if !strings.Contains(res.Problems[0], `"bad"`) || strings.Contains(res.Problems[0], `"good"`) {
		t.Errorf("problem %q should name key bad only", res.Problems[0])
	}
	want := map[string]Verdict{"good": Valid, "bad": Invalid}
	for _, k := range res.Keys {
		if k.Verdict != want[k.Key] {
			t.Errorf("key %q = %v, want %v", k.Key, k.Verdict, want[k.Key])
		}
	}
	var buf bytes.Buffer
	if err := res.Visualize(&buf); err != nil {
		t.Fatalf("Visualize: %v", err)
	}
	if !strings.Contains(buf.String(), "<html") {
		t.Errorf("Visualize wrote no HTML page")
	}
}

// A budget exhausted before a key was searched is Unknown, never Valid.
func TestLinearizableBudgetIsUnknown(t *testing.T) {
	ops := []Op{put(0, "k", "a", 0, 10, 2), get(1, "k", true, "a", 20, 30, 2)}
	res := Linearizable(ops, time.Nanosecond)
	if res.Verdict == Valid {
		t.Fatalf("Linearizable with an exhausted budget = valid, want unknown")
	}
}

// A history whose search space explodes (many concurrent indefinite writes
// and reads that fit no order) ends Unknown or Invalid within the budget,
// never Valid.
func TestLinearizableHardHistoryNeverValid(t *testing.T) {
	var ops []Op
	for i := range 40 {
		v := string(rune('a' + i%26))
		ops = append(ops, status(put(i, "k", v+strings.Repeat("x", i/26), 0, 0, 0), Ambiguous))
	}
	// Reads cycling through values in an order no linearization allows.
	for i := range 40 {
		v := string(rune('a' + (39-i)%26))
		ops = append(ops, get(100+i, "k", true, v+strings.Repeat("x", (39-i)/26), int64(10+2*i), int64(11+2*i), 2))
	}
	ops = append(ops, get(200, "k", true, "a", 1000, 1001, 2))
	start := time.Now()
	res := Linearizable(ops, 200*time.Millisecond)
	if res.Verdict == Valid {
		t.Fatalf("Linearizable = valid, want invalid or unknown")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Linearizable took %v with a 200ms budget", d)
	}
}

func committed(rev int64, chs ...Change) *Committed {
	return &Committed{Changes: chs, Rev: rev}
}

func chPut(rev int64, key, val string) Change { return Change{Rev: rev, Key: key, Value: val} }
func chDel(rev int64, key string) Change      { return Change{Rev: rev, Key: key, Delete: true} }

func TestReads(t *testing.T) {
	hist := committed(5, chPut(2, "k", "a"), chPut(3, "j", "x"), chDel(4, "k"), chPut(5, "k", "b"))
	tests := []struct {
		name string
		ops  []Op
		want Verdict
	}{
		{"reads at each revision", []Op{
			sget(0, "k", false, "", 0, 1, 1), sget(0, "k", true, "a", 2, 3, 2), sget(0, "k", true, "a", 4, 5, 3),
			sget(0, "k", false, "", 6, 7, 4), get(0, "k", true, "b", 8, 9, 5),
		}, Valid},
		{"serializable read of a value not current at its revision", []Op{sget(0, "k", true, "a", 0, 1, 4)}, Invalid},
		{"read missing a put at its revision", []Op{get(0, "k", false, "", 0, 1, 2)}, Invalid},
		{"read beyond the history", []Op{get(0, "k", true, "b", 0, 1, 9)}, Invalid},
		{"cas failure consistent", []Op{cas(0, "k", "a", "z", false, 0, 1, 4)}, Valid},
		{"cas failure although it held", []Op{cas(0, "k", "a", "z", false, 0, 1, 3)}, Invalid},
		{"cas from absent failed although absent", []Op{cas(0, "k", "", "z", false, 0, 1, 4)}, Invalid},
		{"empty delete consistent", []Op{del(0, "k", 0, 0, 1, 4)}, Valid},
		{"empty delete although present", []Op{del(0, "k", 0, 0, 1, 3)}, Invalid},
		{"unanswered ops are not judged", []Op{status(get(0, "k", true, "q", 0, 1, 3), Ambiguous)}, Valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reads(tt.ops, hist); got.Verdict != tt.want {
				t.Errorf("Reads(%s) = %v, want %v\n%s", tt.name, got.Verdict, tt.want, got)
			}
		})
	}
}

func TestDurability(t *testing.T) {
	hist := committed(5, chPut(2, "k", "a"), chPut(3, "j", "x"), chDel(4, "k"), chPut(5, "k", "b"))
	tests := []struct {
		name string
		ops  []Op
		want Verdict
	}{
		{"all present", []Op{put(0, "k", "a", 0, 1, 2), put(0, "j", "x", 2, 3, 3), del(0, "k", 1, 4, 5, 4), cas(0, "k", "", "b", true, 6, 7, 5)}, Valid},
		{"acknowledged put missing", []Op{put(0, "k", "zz", 0, 1, 3)}, Invalid},
		{"acknowledged put with another value at its revision", []Op{put(0, "k", "zz", 0, 1, 2)}, Invalid},
		{"acknowledged revision beyond history", []Op{put(0, "k", "c", 0, 1, 6)}, Invalid},
		{"acknowledged delete missing", []Op{del(0, "j", 1, 0, 1, 4)}, Invalid},
		{"ambiguous write may be missing", []Op{status(put(0, "k", "zz", 0, 1, 0), Ambiguous)}, Valid},
		{"failed cas wrote nothing", []Op{cas(0, "k", "q", "zz", false, 0, 1, 3)}, Valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Durability(tt.ops, hist); got.Verdict != tt.want {
				t.Errorf("Durability(%s) = %v, want %v\n%s", tt.name, got.Verdict, tt.want, got)
			}
		})
	}
}

func TestRevisions(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want Verdict
	}{
		{"increasing", []Op{put(0, "k", "a", 0, 1, 2), get(1, "k", true, "a", 2, 3, 2), put(0, "k", "b", 4, 5, 3)}, Valid},
		{"read goes backwards", []Op{put(0, "k", "a", 0, 1, 5), get(1, "j", false, "", 2, 3, 4)}, Invalid},
		{"write reuses a revision", []Op{put(0, "k", "a", 0, 1, 5), put(1, "j", "b", 2, 3, 5)}, Invalid},
		{"concurrent ops may be in any order", []Op{put(0, "k", "a", 0, 10, 5), get(1, "j", false, "", 2, 3, 4)}, Valid},
		{"serializable reads are not judged", []Op{put(0, "k", "a", 0, 1, 5), sget(1, "k", false, "", 2, 3, 1)}, Valid},
		{"ambiguous ops are not judged", []Op{put(0, "k", "a", 0, 1, 5), status(get(1, "k", false, "", 2, 3, 1), Ambiguous)}, Valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Revisions(tt.ops); got.Verdict != tt.want {
				t.Errorf("Revisions(%s) = %v, want %v\n%s", tt.name, got.Verdict, tt.want, got)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	hist := committed(6, chPut(2, "k", "a"), chPut(3, "j", "x"), chDel(4, "k"), chPut(5, "k", "b"), chPut(6, "kk", "c"))
	stream := func(start int64, evs ...Change) WatchStream {
		return WatchStream{Name: "w", Key: "k", StartRev: start, Events: evs}
	}
	tests := []struct {
		name   string
		stream WatchStream
		want   Verdict
	}{
		{"complete", stream(1, chPut(2, "k", "a"), chDel(4, "k"), chPut(5, "k", "b")), Valid},
		{"from a later revision", stream(3, chDel(4, "k"), chPut(5, "k", "b")), Valid},
		{"nothing yet", stream(1), Valid},
		{"gap", stream(1, chPut(2, "k", "a"), chPut(5, "k", "b")), Invalid},
		{"duplicate", stream(1, chPut(2, "k", "a"), chPut(2, "k", "a"), chDel(4, "k")), Invalid},
		{"out of order", stream(1, chDel(4, "k"), chPut(2, "k", "a")), Invalid},
		{"altered value", stream(1, chPut(2, "k", "zz")), Invalid},
		{"invented event", stream(1, chPut(3, "k", "q")), Invalid},
		{"other key", stream(1, chPut(2, "k", "a"), chPut(3, "j", "x")), Invalid},
		{"older than start", stream(3, chPut(2, "k", "a")), Invalid},
		{"beyond history", stream(1, chPut(2, "k", "a"), chDel(4, "k"), chPut(5, "k", "b"), chPut(9, "k", "z")), Invalid},
		{"progress promises more than delivered", WatchStream{Name: "w", Key: "k", StartRev: 1, Events: []Change{chPut(2, "k", "a")}, UpTo: 6}, Invalid},
		{"prefix", WatchStream{Name: "w", Key: "k", Prefix: true, StartRev: 5, Events: []Change{chPut(5, "k", "b"), chPut(6, "kk", "c")}}, Valid},
		{"prefix missing a key", WatchStream{Name: "w", Key: "k", Prefix: true, StartRev: 5, Events: []Change{chPut(6, "kk", "c")}}, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Watch([]WatchStream{tt.stream}, hist); got.Verdict != tt.want {
				t.Errorf("Watch(%s) = %v, want %v\n%s", tt.name, got.Verdict, tt.want, got)
			}
		})
	}
}

func TestRecorder(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := range 50 {
				id := r.Call(Op{Client: c, Kind: Put, Key: "k", Value: "v", Rev: 99, Status: OK}, int64(i))
				switch i % 3 {
				case 0:
					r.Return(id, Op{Rev: int64(i)}, int64(i)+1)
				case 1:
					r.Fail(id, true, int64(i)+1)
				}
				// Settled operations stay settled.
				r.Fail(id, false, int64(i)+2)
			}
		})
	}
	wg.Wait()
	counts := map[Status]int{}
	for _, o := range r.Ops() {
		counts[o.Status]++
	}
	want := map[Status]int{OK: 8 * 17, Failed: 8 * 17, Ambiguous: 8 * 16}
	for s, n := range want {
		if counts[s] != n {
			t.Errorf("%v ops = %d, want %d", s, counts[s], n)
		}
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Valid},
		{[]Verdict{Valid, Valid}, Valid},
		{[]Verdict{Valid, Unknown}, Unknown},
		{[]Verdict{Unknown, Invalid, Valid}, Invalid},
	}
	for _, tt := range tests {
		if got := Worst(tt.in...); got != tt.want {
			t.Errorf("Worst(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAppliedOnce(t *testing.T) {
	tests := []struct {
		name string
		hist *Committed
		want Verdict
	}{
		{"unique", committed(4, chPut(2, "k", "a"), chDel(3, "k"), chPut(4, "k", "b")), Valid},
		{"deletes may repeat", committed(3, chDel(2, "k"), chDel(3, "k")), Valid},
		{"put applied twice", committed(3, chPut(2, "k", "a"), chPut(3, "k", "a")), Invalid},
		{"same value on two keys", committed(3, chPut(2, "k", "a"), chPut(3, "j", "a")), Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppliedOnce(tt.hist); got.Verdict != tt.want {
				t.Errorf("AppliedOnce(%s) = %v, want %v\n%s", tt.name, got.Verdict, tt.want, got)
			}
		})
	}
}
