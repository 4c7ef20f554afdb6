package apply

import (
	"errors"
	"fmt"
	"testing"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/mvcc"
)

// rangeFixture leaves, at revision 8:
//
//	a=z3@2/8/3  b=y2@3/5/2  c=x@4/4/1  d=w@6/6/1
func rangeFixture(t *testing.T) *harness {
	h := newHarness(t)
	for _, kv := range [][2]string{{"a", "z"}, {"b", "y"}, {"c", "x"}, {"b", "y2"}, {"d", "w"}, {"a", "z2"}, {"a", "z3"}} {
		h.put(kv[0], kv[1])
	}
	return h
}

func TestRange(t *testing.T) {
	h := rangeFixture(t)
	const (
		A = "a=z3@2/8/3"
		B = "b=y2@3/5/2"
		C = "c=x@4/4/1"
		D = "d=w@6/6/1"
	)
	type rr = command.RangeRequest
	asc, desc, none := command.RangeRequest_ASCEND, command.RangeRequest_DESCEND, command.RangeRequest_NONE
	tests := []struct {
		name  string
		req   *rr
		want  string
		more  bool
		count int64
		err   error
	}{
		{"single key", &rr{Key: []byte("b")}, B, false, 1, nil},
		{"missing key", &rr{Key: []byte("bb")}, "", false, 0, nil},
		{"range", &rr{Key: []byte("a"), RangeEnd: []byte("c")}, A + " " + B, false, 2, nil},
		{"from key", &rr{Key: []byte("b"), RangeEnd: []byte{0}}, B + " " + C + " " + D, false, 3, nil},
		{"all keys", &rr{Key: []byte{0}, RangeEnd: []byte{0}}, A + " " + B + " " + C + " " + D, false, 4, nil},
		{"end before key", &rr{Key: []byte("c"), RangeEnd: []byte("a")}, "", false, 0, nil},
		{"limit", &rr{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 2}, A + " " + B, true, 4, nil},
		{"limit exact", &rr{Key: []byte("a"), RangeEnd: []byte{0}, Limit: 4}, A + " " + B + " " + C + " " + D, false, 4, nil},
		{"negative limit", &rr{Key: []byte("a"), RangeEnd: []byte{0}, Limit: -1}, A + " " + B + " " + C + " " + D, false, 4, nil},
		{"historical", &rr{Key: []byte("a"), RangeEnd: []byte{0}, Revision: 4}, "a=z@2/2/1 b=y@3/3/1 c=x@4/4/1", false, 3, nil},
		{"historical single", &rr{Key: []byte("a"), Revision: 7}, "a=z2@2/7/2", false, 1, nil},
		{"future", &rr{Key: []byte("a"), Revision: 9}, "", false, 0, mvcc.ErrFutureRev},
		{"keys only", &rr{Key: []byte("c"), RangeEnd: []byte("e"), KeysOnly: true}, "c=@4/4/1 d=@6/6/1", false, 2, nil},
		{"count only", &rr{Key: []byte("a"), RangeEnd: []byte{0}, CountOnly: true}, "", false, 4, nil},
		{"count only with limit", &rr{Key: []byte("a"), RangeEnd: []byte{0}, CountOnly: true, Limit: 1}, "", false, 4, nil},
		{"sort key descend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: desc}, D + " " + C + " " + B + " " + A, false, 4, nil},
		{"sort key descend limit", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: desc, Limit: 2}, D + " " + C, true, 4, nil},
		{"sort key ascend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: asc, Limit: 1}, A, true, 4, nil},
		{"sort version ascend (ties by key)", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: asc, SortTarget: command.RangeRequest_VERSION}, C + " " + D + " " + B + " " + A, false, 4, nil},
		{"sort version descend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: desc, SortTarget: command.RangeRequest_VERSION}, A + " " + B + " " + D + " " + C, false, 4, nil},
		{"sort version ascend limit (sort then limit)", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: asc, SortTarget: command.RangeRequest_VERSION, Limit: 2}, C + " " + D, true, 4, nil},
		{"sort none+version = ascend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: none, SortTarget: command.RangeRequest_VERSION}, C + " " + D + " " + B + " " + A, false, 4, nil},
		// etcd pushes the limit down for NONE, then sorts the first limit+1 keys.
		{"sort none+version limit", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortTarget: command.RangeRequest_VERSION, Limit: 2}, C + " " + B, true, 4, nil},
		{"sort create descend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: desc, SortTarget: command.RangeRequest_CREATE}, D + " " + C + " " + B + " " + A, false, 4, nil},
		{"sort mod ascend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: asc, SortTarget: command.RangeRequest_MOD}, C + " " + B + " " + D + " " + A, false, 4, nil},
		{"sort value ascend", &rr{Key: []byte("a"), RangeEnd: []byte{0}, SortOrder: asc, SortTarget: command.RangeRequest_VALUE}, D + " " + C + " " + B + " " + A, false, 4, nil},
		{"min mod", &rr{Key: []byte("a"), RangeEnd: []byte{0}, MinModRevision: 5}, A + " " + B + " " + D, false, 4, nil},
		{"max mod", &rr{Key: []byte("a"), RangeEnd: []byte{0}, MaxModRevision: 5}, B + " " + C, false, 4, nil},
		{"min create", &rr{Key: []byte("a"), RangeEnd: []byte{0}, MinCreateRevision: 4}, C + " " + D, false, 4, nil},
		{"max create", &rr{Key: []byte("a"), RangeEnd: []byte{0}, MaxCreateRevision: 3}, A + " " + B, false, 4, nil},
		{"filter then limit", &rr{Key: []byte("a"), RangeEnd: []byte{0}, MinModRevision: 5, Limit: 1}, A, true, 4, nil},
		{"empty key", &rr{}, "", false, 0, ErrEmptyKey},
		{"bad sort order", &rr{Key: []byte("a"), SortOrder: 7}, "", false, 0, ErrInvalidSortOption},
		{"bad sort target", &rr{Key: []byte("a"), SortTarget: 9}, "", false, 0, ErrInvalidSortOption},
	}
	for _, tt := range tests {
		resp, rev, err := h.a.Range(tt.req)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: Range(%v) error = %v, want %v", tt.name, tt.req, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if got := kvs(resp.GetKvs()); got != tt.want || resp.GetMore() != tt.more || resp.GetCount() != tt.count || rev != 8 {
			t.Errorf("%s: Range(%v) = %q more=%v count=%d rev=%d, want %q more=%v count=%d rev=8",
				tt.name, tt.req, got, resp.GetMore(), resp.GetCount(), rev, tt.want, tt.more, tt.count)
		}
	}
}

func TestRangeCompacted(t *testing.T) {
	h := rangeFixture(t)
	if res := h.compact(5); res.Err != nil || res.Rev != 8 {
		t.Fatalf("Compact(5) = %+v, want no error and rev 8 (no bump)", res)
	}
	for _, tt := range []struct {
		rev  int64
		want string
		err  error
	}{
		{rev: 4, err: mvcc.ErrCompacted},
		{rev: 5, want: "a=z@2/2/1 b=y2@3/5/2 c=x@4/4/1"},
		{rev: 0, want: "a=z3@2/8/3 b=y2@3/5/2 c=x@4/4/1 d=w@6/6/1"},
	} {
		resp, _, err := h.a.Range(&command.RangeRequest{Key: []byte("a"), RangeEnd: []byte{0}, Revision: tt.rev})
		if !errors.Is(err, tt.err) || kvs(resp.GetKvs()) != tt.want {
			t.Errorf("Range(rev %d) = %q, %v, want %q, %v", tt.rev, kvs(resp.GetKvs()), err, tt.want, tt.err)
		}
	}
	for _, tt := range []struct {
		rev int64
		err error
	}{{5, mvcc.ErrCompacted}, {3, mvcc.ErrCompacted}, {9, mvcc.ErrFutureRev}} {
		if res := h.compact(tt.rev); !errors.Is(res.Err, tt.err) || res.Rev != 8 || res.Resp != nil {
			t.Errorf("Compact(%d) = %+v, want Err %v rev 8", tt.rev, res, tt.err)
		}
	}
	if res := h.compact(8); res.Err != nil {
		t.Errorf("Compact(8) = %v", res.Err)
	} else if _, ok := res.Resp.(*command.CompactionResponse); !ok {
		t.Errorf("Compact(8) Resp = %T, want *command.CompactionResponse", res.Resp)
	}
}

func TestPut(t *testing.T) {
	type pr = command.PutRequest
	tests := []struct {
		name    string
		req     *pr
		wantRev int64
		prev    string // rendered prev_kv, "" for none
		after   string // rendered key after the put
		err     error
	}{
		{"create", &pr{Key: []byte("new"), Value: []byte("v")}, 4, "", "new=v@4/4/1", nil},
		{"overwrite", &pr{Key: []byte("k"), Value: []byte("v3")}, 4, "", "k=v3@2/4/3", nil},
		{"prev kv", &pr{Key: []byte("k"), Value: []byte("v3"), PrevKv: true}, 4, "k=v2@2/3/2", "k=v3@2/4/3", nil},
		{"prev kv of new key", &pr{Key: []byte("new"), PrevKv: true}, 4, "", "new=@4/4/1", nil},
		{"ignore value", &pr{Key: []byte("k"), IgnoreValue: true}, 4, "", "k=v2@2/4/3", nil},
		{"ignore value missing", &pr{Key: []byte("new"), IgnoreValue: true}, 3, "", "", ErrKeyNotFound},
		{"ignore lease", &pr{Key: []byte("k"), Value: []byte("x"), IgnoreLease: true}, 4, "", "k=x@2/4/3", nil},
		{"ignore lease missing", &pr{Key: []byte("new"), IgnoreLease: true}, 3, "", "", ErrKeyNotFound},
		{"lease", &pr{Key: []byte("k"), Value: []byte("x"), Lease: 7}, 3, "", "k=v2@2/3/2", ErrLeaseNotFound},
		{"lease on missing key", &pr{Key: []byte("new"), IgnoreValue: true, Lease: 7}, 3, "", "", ErrLeaseNotFound},
	}
	for _, tt := range tests {
		h := newHarness(t)
		h.put("k", "v1")
		h.put("k", "v2")
		res := h.putReq(tt.req)
		if !errors.Is(res.Err, tt.err) || res.Rev != tt.wantRev {
			t.Errorf("%s: Put(%v) = err %v rev %d, want err %v rev %d", tt.name, tt.req, res.Err, res.Rev, tt.err, tt.wantRev)
			continue
		}
		if res.Err == nil {
			resp, ok := res.Resp.(*command.PutResponse)
			if !ok {
				t.Errorf("%s: Resp = %T", tt.name, res.Resp)
				continue
			}
			if got := kvs(nonNil(resp.GetPrevKv())); got != tt.prev {
				t.Errorf("%s: Put(%v) prev_kv = %q, want %q", tt.name, tt.req, got, tt.prev)
			}
		} else if res.Resp != nil {
			t.Errorf("%s: rejected Put has Resp %v", tt.name, res.Resp)
		}
		got, _, _ := h.a.Range(&command.RangeRequest{Key: tt.req.Key})
		if kvs(got.GetKvs()) != tt.after {
			t.Errorf("%s: after Put(%v) key = %q, want %q", tt.name, tt.req, kvs(got.GetKvs()), tt.after)
		}
	}
}

func nonNil(kv *command.KeyValue) []*command.KeyValue {
	if kv == nil {
		return nil
	}
	return []*command.KeyValue{kv}
}

// fakeLeases grants a fixed set of leases, standing in for the lease table.
type fakeLeases map[int64]bool

func (f fakeLeases) Exists(id int64) bool { return f[id] }

func TestPutLeaseSeam(t *testing.T) {
	h := newHarness(t)
	h.a.leases = fakeLeases{7: true}
	if res := h.putReq(&command.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 7}); res.Err != nil {
		t.Fatalf("Put(lease 7) = %v", res.Err)
	}
	h.a.leases = fakeLeases{}
	// Keeping a lease that no longer exists is refused too.
	if res := h.putReq(&command.PutRequest{Key: []byte("k"), Value: []byte("w"), IgnoreLease: true}); !errors.Is(res.Err, ErrLeaseNotFound) {
		t.Errorf("Put(ignore_lease, lease gone) = %v, want ErrLeaseNotFound", res.Err)
	}
	if res := h.putReq(&command.PutRequest{Key: []byte("k"), IgnoreValue: true}); res.Err != nil {
		t.Errorf("Put(ignore_value, lease dropped) = %v", res.Err)
	}
}

func TestDeleteRange(t *testing.T) {
	type dr = command.DeleteRangeRequest
	tests := []struct {
		req     *dr
		deleted int64
		prev    string
		rev     int64
		left    string
	}{
		{&dr{Key: []byte("b")}, 1, "", 5, "a c"},
		{&dr{Key: []byte("b"), PrevKv: true}, 1, "b=2@3/3/1", 5, "a c"},
		{&dr{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true}, 2, "a=1@2/2/1 b=2@3/3/1", 5, "c"},
		{&dr{Key: []byte("b"), RangeEnd: []byte{0}}, 2, "", 5, "a"},
		{&dr{Key: []byte{0}, RangeEnd: []byte{0}}, 3, "", 5, ""},
		{&dr{Key: []byte("zz"), PrevKv: true}, 0, "", 4, "a b c"},
		{&dr{Key: []byte("c"), RangeEnd: []byte("a")}, 0, "", 4, "a b c"},
	}
	for _, tt := range tests {
		h := newHarness(t)
		h.put("a", "1")
		h.put("b", "2")
		h.put("c", "3")
		res := h.del(tt.req)
		resp, ok := res.Resp.(*command.DeleteRangeResponse)
		if res.Err != nil || !ok {
			t.Errorf("DeleteRange(%v) = %+v", tt.req, res)
			continue
		}
		if resp.GetDeleted() != tt.deleted || kvs(resp.GetPrevKvs()) != tt.prev || res.Rev != tt.rev {
			t.Errorf("DeleteRange(%v) = deleted %d prev %q rev %d, want %d %q %d",
				tt.req, resp.GetDeleted(), kvs(resp.GetPrevKvs()), res.Rev, tt.deleted, tt.prev, tt.rev)
		}
		all, _, _ := h.a.Range(&command.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, KeysOnly: true})
		var left []byte
		for i, kv := range all.GetKvs() {
			if i > 0 {
				left = append(left, ' ')
			}
			left = append(left, kv.Key...)
		}
		if string(left) != tt.left {
			t.Errorf("DeleteRange(%v) left %q, want %q", tt.req, left, tt.left)
		}
	}
}

func TestCompare(t *testing.T) {
	// a=1@2/2/1, b=22@3/4/2 (lease 0), c absent.
	eq, ne, gt, lt := command.Compare_EQUAL, command.Compare_NOT_EQUAL, command.Compare_GREATER, command.Compare_LESS
	tests := []struct {
		c    *command.Compare
		want bool
	}{
		{cmpVersion("a", eq, 1), true},
		{cmpVersion("b", gt, 1), true},
		{cmpVersion("b", lt, 2), false},
		{cmpVersion("c", eq, 0), true}, // missing key has version 0
		{cmpVersion("c", ne, 0), false},
		{cmpCreate("b", eq, 3), true},
		{cmpCreate("c", eq, 0), true},
		{cmpCreate("a", lt, 3), true},
		{cmpMod("b", eq, 4), true},
		{cmpMod("b", gt, 4), false},
		{cmpMod("c", lt, 1), true},
		{cmpValue("a", eq, "1"), true},
		{cmpValue("a", gt, "0"), true},
		{cmpValue("b", lt, "3"), true},
		{cmpValue("b", ne, "22"), false},
		{cmpValue("c", eq, ""), false}, // VALUE on a missing key is always false
		{cmpValue("c", ne, "x"), false},
		{cmpLease("a", eq, 0), true},
		{cmpLease("c", eq, 0), true},
		{cmpLease("a", gt, 0), false},
		{withEnd(cmpVersion("a", gt, 0), "c"), true},      // every key in [a, c)
		{withEnd(cmpVersion("a", eq, 1), "c"), false},     // b has version 2
		{withEnd(cmpVersion("a", lt, 5), "\x00"), true},   // from a
		{withEnd(cmpVersion("x", eq, 0), "z"), true},      // empty range compares as missing
		{withEnd(cmpValue("x", eq, ""), "z"), false},      // ... and VALUE is false
		{withEnd(cmpCreate("\x00", gt, 1), "\x00"), true}, // all keys
		{withEnd(cmpMod("a", eq, 2), "b"), true},          // range holding only a
		{&command.Compare{Key: []byte("a"), Target: command.Compare_VERSION, Result: eq}, false}, // unset union = 0
		{&command.Compare{Key: []byte("a"), Target: command.Compare_VERSION, Result: gt, TargetUnion: &command.Compare_Value{Value: []byte("9")}}, true},
	}
	for _, tt := range tests {
		h := newHarness(t)
		h.put("a", "1")
		h.put("b", "2")
		h.put("b", "22")
		res := h.txn(&command.TxnRequest{Compare: []*command.Compare{tt.c}})
		resp, _ := res.Resp.(*command.TxnResponse)
		if res.Err != nil || resp == nil {
			t.Errorf("Compare(%v) = %+v", tt.c, res)
			continue
		}
		if resp.GetSucceeded() != tt.want {
			t.Errorf("Compare(%v) = %v, want %v", tt.c, resp.GetSucceeded(), tt.want)
		}
		if res.Rev != 4 {
			t.Errorf("Compare(%v): txn without writes moved revision to %d", tt.c, res.Rev)
		}
	}
}

func TestTxn(t *testing.T) {
	eq := command.Compare_EQUAL
	type tr = command.TxnRequest
	tests := []struct {
		name  string
		req   *tr
		want  string // summarize(resp)
		rev   int64
		err   error
		after string // all keys after
	}{
		{
			name:  "success branch, ops see earlier writes",
			req:   &tr{Compare: []*command.Compare{cmpValue("a", eq, "1")}, Success: ops(opPut("a", "2"), opRange("a", ""), opPut("n", "x"), opRange("a", "\x00")), Failure: ops(opPut("f", "f"))},
			want:  "true[put prev= | range a=2@2/3/2 | put prev= | range a=2@2/3/2 n=x@3/3/1]",
			rev:   3,
			after: "a=2@2/3/2 n=x@3/3/1",
		},
		{
			name:  "failure branch",
			req:   &tr{Compare: []*command.Compare{cmpValue("a", eq, "nope")}, Success: ops(opPut("s", "s")), Failure: ops(opPut("f", "f"), opDel("a", ""))},
			want:  "false[put prev= | del 1]",
			rev:   3,
			after: "f=f@3/3/1",
		},
		{
			name:  "read only txn does not bump",
			req:   &tr{Success: ops(opRange("a", ""))},
			want:  "true[range a=1@2/2/1]",
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name:  "delete of nothing does not bump",
			req:   &tr{Success: ops(opDel("zz", ""))},
			want:  "true[del 0]",
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name:  "empty txn",
			req:   &tr{},
			want:  "true[]",
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name: "nested txns, compares see the state before the txn",
			req: &tr{Success: ops(
				opPut("a", "2"),
				opTxn(&tr{Compare: []*command.Compare{cmpValue("a", eq, "1")}, Success: ops(opPut("b", "1"), opTxn(&tr{Compare: []*command.Compare{cmpVersion("b", eq, 0)}, Success: ops(opRange("b", ""))}))}),
				opTxn(&tr{Compare: []*command.Compare{cmpValue("a", eq, "2")}, Success: ops(opPut("c", "bad")), Failure: ops(opPut("c", "1"))}),
			)},
			want:  "true[put prev= | txn true[put prev= | txn true[range b=1@3/3/1]] | txn false[put prev=]]",
			rev:   3,
			after: "a=2@2/3/2 b=1@3/3/1 c=1@3/3/1",
		},
		{
			name:  "put and delete in one txn",
			req:   &tr{Success: ops(opPut("b", "1"), opDel("a", ""), opRange("a", "\x00"))},
			want:  "true[put prev= | del 1 | range b=1@3/3/1]",
			rev:   3,
			after: "b=1@3/3/1",
		},
		{
			name:  "prev kv inside txn",
			req:   &tr{Success: ops(opPutReq(&command.PutRequest{Key: []byte("a"), Value: []byte("3"), PrevKv: true}))},
			want:  "true[put prev=a=1@2/2/1]",
			rev:   3,
			after: "a=3@2/3/2",
		},
		{
			name:  "failed check rejects whole txn",
			req:   &tr{Success: ops(opPut("x", "1"), opPutReq(&command.PutRequest{Key: []byte("missing"), IgnoreValue: true}))},
			err:   ErrKeyNotFound,
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name:  "lease rejects whole txn",
			req:   &tr{Success: ops(opPut("x", "1"), opPutReq(&command.PutRequest{Key: []byte("y"), Lease: 5}))},
			err:   ErrLeaseNotFound,
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name:  "check only the chosen branch",
			req:   &tr{Compare: []*command.Compare{cmpVersion("a", eq, 1)}, Success: ops(opPut("x", "1")), Failure: ops(opPutReq(&command.PutRequest{Key: []byte("y"), Lease: 5}))},
			want:  "true[put prev=]",
			rev:   3,
			after: "a=1@2/2/1 x=1@3/3/1",
		},
		{
			name:  "future revision range rejects txn",
			req:   &tr{Success: ops(opPut("x", "1"), &command.RequestOp{Request: &command.RequestOp_RequestRange{RequestRange: &command.RangeRequest{Key: []byte("a"), Revision: 3}}})},
			err:   mvcc.ErrFutureRev,
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name:  "duplicate put rejected at apply",
			req:   &tr{Success: ops(opPut("x", "1"), opPut("x", "2"))},
			err:   ErrDuplicateKey,
			rev:   2,
			after: "a=1@2/2/1",
		},
		{
			name:  "put inside from-key delete rejected at apply",
			req:   &tr{Success: ops(opDel("a", "\x00"), opPutReq(&command.PutRequest{Key: []byte("a"), IgnoreValue: true}))},
			err:   ErrDuplicateKey,
			rev:   2,
			after: "a=1@2/2/1",
		},
	}
	for _, tt := range tests {
		h := newHarness(t)
		h.put("a", "1")
		res := h.txn(tt.req)
		if !errors.Is(res.Err, tt.err) || res.Rev != tt.rev {
			t.Errorf("%s: Txn = err %v rev %d, want err %v rev %d", tt.name, res.Err, res.Rev, tt.err, tt.rev)
			continue
		}
		if res.Err == nil {
			resp, ok := res.Resp.(*command.TxnResponse)
			if !ok {
				t.Errorf("%s: Resp = %T", tt.name, res.Resp)
				continue
			}
			if got := summarize(resp); got != tt.want {
				t.Errorf("%s: Txn = %s, want %s", tt.name, got, tt.want)
			}
		}
		all, _, _ := h.a.Range(&command.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
		if got := kvs(all.GetKvs()); got != tt.after {
			t.Errorf("%s: after Txn keys = %q, want %q", tt.name, got, tt.after)
		}
	}
}

func TestReadTxn(t *testing.T) {
	h := rangeFixture(t)
	eq := command.Compare_EQUAL
	ro := &command.TxnRequest{
		Compare: []*command.Compare{cmpVersion("a", eq, 3)},
		Success: ops(opRange("a", ""), opRange("c", "e")),
		Failure: ops(opRange("b", "")),
	}
	if !IsReadOnlyTxn(ro) {
		t.Fatalf("IsReadOnlyTxn(%v) = false", ro)
	}
	resp, rev, err := h.a.ReadTxn(ro)
	if err != nil || rev != 8 {
		t.Fatalf("ReadTxn = %v, rev %d", err, rev)
	}
	if got, want := summarize(resp), "true[range a=z3@2/8/3 | range c=x@4/4/1 d=w@6/6/1]"; got != want {
		t.Errorf("ReadTxn = %s, want %s", got, want)
	}
	for _, tt := range []struct {
		req *command.TxnRequest
		ro  bool
		err error
	}{
		{&command.TxnRequest{Success: ops(opPut("a", "1"))}, false, ErrNotReadOnly},
		{&command.TxnRequest{Failure: ops(opDel("a", ""))}, false, nil}, // not read-only, but the chosen path is
		{&command.TxnRequest{Success: ops(opTxn(&command.TxnRequest{}))}, false, nil},
		{&command.TxnRequest{Success: ops(&command.RequestOp{Request: &command.RequestOp_RequestRange{RequestRange: &command.RangeRequest{Key: []byte("a"), Revision: 99}}})}, true, mvcc.ErrFutureRev},
		{&command.TxnRequest{}, true, nil},
	} {
		if got := IsReadOnlyTxn(tt.req); got != tt.ro {
			t.Errorf("IsReadOnlyTxn(%v) = %v, want %v", tt.req, got, tt.ro)
		}
		if _, _, err := h.a.ReadTxn(tt.req); !errors.Is(err, tt.err) {
			t.Errorf("ReadTxn(%v) = %v, want %v", tt.req, err, tt.err)
		}
	}
	if h.a.Store().Rev() != 8 {
		t.Errorf("ReadTxn changed the revision")
	}
}

func TestValidate(t *testing.T) {
	type pr = command.PutRequest
	for _, tt := range []struct {
		req *pr
		err error
	}{
		{&pr{Key: []byte("k")}, nil},
		{&pr{}, ErrEmptyKey},
		{&pr{Key: []byte("k"), IgnoreValue: true}, nil},
		{&pr{Key: []byte("k"), IgnoreValue: true, Value: []byte("v")}, ErrValueProvided},
		{&pr{Key: []byte("k"), IgnoreLease: true, Lease: 1}, ErrLeaseProvided},
	} {
		if err := ValidatePut(tt.req); !errors.Is(err, tt.err) {
			t.Errorf("ValidatePut(%v) = %v, want %v", tt.req, err, tt.err)
		}
	}
	if err := ValidateDeleteRange(&command.DeleteRangeRequest{}); !errors.Is(err, ErrEmptyKey) {
		t.Errorf("ValidateDeleteRange(empty) = %v, want ErrEmptyKey", err)
	}
	if err := ValidateDeleteRange(&command.DeleteRangeRequest{Key: []byte("k")}); err != nil {
		t.Errorf("ValidateDeleteRange(k) = %v", err)
	}

	type tr = command.TxnRequest
	many := func(n int) []*command.RequestOp {
		var o []*command.RequestOp
		for i := 0; i < n; i++ {
			o = append(o, opRange(fmt.Sprint(i), ""))
		}
		return o
	}
	manyCmp := func(n int) []*command.Compare {
		var c []*command.Compare
		for i := 0; i < n; i++ {
			c = append(c, cmpVersion("k", command.Compare_EQUAL, 0))
		}
		return c
	}
	tests := []struct {
		name string
		req  *tr
		err  error
	}{
		{"empty", &tr{}, nil},
		{"at limit", &tr{Success: many(4), Failure: many(4), Compare: manyCmp(4)}, nil},
		{"too many success", &tr{Success: many(5)}, ErrTooManyOps},
		{"too many failure", &tr{Failure: many(5)}, ErrTooManyOps},
		{"too many compares", &tr{Compare: manyCmp(5)}, ErrTooManyOps},
		{"nested budget is what the parent leaves", &tr{Success: ops(opPut("a", "1"), opTxn(&tr{Success: many(3)}))}, ErrTooManyOps},
		{"nested within budget", &tr{Success: ops(opPut("a", "1"), opTxn(&tr{Success: many(2)}))}, nil},
		{"empty compare key", &tr{Compare: []*command.Compare{{Target: command.Compare_VERSION}}}, ErrEmptyKey},
		{"empty op", &tr{Success: ops(&command.RequestOp{})}, ErrKeyNotFound},
		{"op validated", &tr{Failure: ops(opPutReq(&command.PutRequest{Key: []byte("k"), IgnoreLease: true, Lease: 3}))}, ErrLeaseProvided},
		{"nested op validated", &tr{Success: ops(opTxn(&tr{Failure: ops(opRange("", ""))}))}, ErrEmptyKey},
		{"bad sort in txn", &tr{Success: ops(&command.RequestOp{Request: &command.RequestOp_RequestRange{RequestRange: &command.RangeRequest{Key: []byte("k"), SortTarget: 42}}})}, ErrInvalidSortOption},
		{"put/put", &tr{Success: ops(opPut("a", "1"), opPut("a", "2"))}, ErrDuplicateKey},
		{"put/put across branches is fine", &tr{Success: ops(opPut("a", "1")), Failure: ops(opPut("a", "2"))}, nil},
		{"put in deleted range", &tr{Success: ops(opPut("b", "1"), opDel("a", "c"))}, ErrDuplicateKey},
		{"put at deleted range end is fine", &tr{Success: ops(opPut("c", "1"), opDel("a", "c"))}, nil},
		{"put of deleted key", &tr{Success: ops(opDel("a", ""), opPut("a", "1"))}, ErrDuplicateKey},
		{"put after deleted key", &tr{Success: ops(opDel("a", ""), opPut("a\x00", "1"))}, nil},
		{"put in from-key delete", &tr{Success: ops(opDel("a", "\x00"), opPut("zzz", "1"))}, ErrDuplicateKey},
		{"put before from-key delete is fine", &tr{Success: ops(opDel("b", "\x00"), opPut("a", "1"))}, nil},
		{"delete/delete is fine", &tr{Success: ops(opDel("a", "z"), opDel("b", ""))}, nil},
		{"nested put vs parent put", &tr{Success: ops(opPut("a", "1"), opTxn(&tr{Success: ops(opPut("a", "2"))}))}, ErrDuplicateKey},
		{"nested put vs parent delete", &tr{Success: ops(opDel("a", "b"), opTxn(&tr{Failure: ops(opPut("a", "2"))}))}, ErrDuplicateKey},
		{"parent put vs nested delete", &tr{Success: ops(opPut("a", "1"), opTxn(&tr{Success: ops(opDel("a", ""))}))}, ErrDuplicateKey},
		{"nested then/else same key is fine", &tr{Success: ops(opTxn(&tr{Success: ops(opPut("a", "1")), Failure: ops(opPut("a", "2"))}))}, nil},
		{"two nested txns put one key", &tr{Success: ops(opTxn(&tr{Success: ops(opPut("a", "1"))}), opTxn(&tr{Failure: ops(opPut("a", "2"))}))}, ErrDuplicateKey},
		{"nested delete then sibling nested put", &tr{Success: ops(opTxn(&tr{Success: ops(opDel("a", "c"))}), opTxn(&tr{Success: ops(opPut("b", "2"))}))}, ErrDuplicateKey},
		{"failure branch checked", &tr{Failure: ops(opPut("a", "1"), opPut("a", "1"))}, ErrDuplicateKey},
		{"deep nesting dup", &tr{Success: ops(opTxn(&tr{Success: ops(opTxn(&tr{Success: ops(opPut("k", "1"))}))}), opPut("k", "2"))}, ErrDuplicateKey},
	}
	for _, tt := range tests {
		if err := ValidateTxn(tt.req, 4); !errors.Is(err, tt.err) {
			t.Errorf("%s: ValidateTxn(%v) = %v, want %v", tt.name, tt.req, err, tt.err)
		}
	}
}

func TestIntervals(t *testing.T) {
	var s intervals
	s.add([]byte("m"), []byte("p"))
	s.add([]byte("b"), nil)
	s.add([]byte("c"), []byte("a")) // empty
	s.add([]byte("o"), []byte("q"))
	var t2 intervals
	t2.add([]byte("x"), []byte{0})
	s.union(&t2)
	for _, tt := range []struct {
		k    string
		want bool
	}{
		{"a", false}, {"b", true}, {"b\x00", false}, {"c", false}, {"m", true}, {"p", true},
		{"pz", true}, {"q", false}, {"w", false}, {"x", true}, {"zzzz", true}, {"", false},
	} {
		if got := s.contains(tt.k); got != tt.want {
			t.Errorf("contains(%q) = %v, want %v", tt.k, got, tt.want)
		}
	}
}
