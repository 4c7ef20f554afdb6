package apply

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/command"
)

// harness applies commands at consecutive indexes.
type harness struct {
	t     testing.TB
	a     *Applier
	index uint64
	id    uint64
}

func newHarness(t testing.TB) *harness { return &harness{t: t, a: New(nil)} }

func encode(t testing.TB, c *command.Command) []byte {
	t.Helper()
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *harness) apply(c *command.Command) Result {
	h.t.Helper()
	h.index++
	h.id++
	c.Version, c.Id = command.Version, h.id
	id, res, err := h.a.Apply(h.index, encode(h.t, c))
	if err != nil {
		h.t.Fatalf("Apply(%v) error = %v", c, err)
	}
	if id != h.id {
		h.t.Fatalf("Apply id = %d, want %d", id, h.id)
	}
	return res
}

func (h *harness) put(key, value string) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_Put{Put: &command.PutRequest{Key: []byte(key), Value: []byte(value)}}})
}

func (h *harness) putReq(p *command.PutRequest) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_Put{Put: p}})
}

func (h *harness) del(d *command.DeleteRangeRequest) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_DeleteRange{DeleteRange: d}})
}

func (h *harness) txn(t *command.TxnRequest) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_Txn{Txn: t}})
}

func (h *harness) compact(rev int64) Result {
	h.t.Helper()
	return h.apply(&command.Command{Op: &command.Command_Compaction{Compaction: &command.CompactionRequest{Revision: rev}}})
}

// kvs renders key=value@create/mod/version, space separated.
func kvs(list []*command.KeyValue) string {
	var parts []string
	for _, kv := range list {
		parts = append(parts, fmt.Sprintf("%s=%s@%d/%d/%d", kv.GetKey(), kv.GetValue(), kv.GetCreateRevision(), kv.GetModRevision(), kv.GetVersion()))
	}
	return strings.Join(parts, " ")
}

// Request-op builders for txn tables.
func opRange(key, end string) *command.RequestOp {
	return &command.RequestOp{Request: &command.RequestOp_RequestRange{RequestRange: &command.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}}}
}

func opPut(key, value string) *command.RequestOp {
	return &command.RequestOp{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: []byte(key), Value: []byte(value)}}}
}

func opPutReq(p *command.PutRequest) *command.RequestOp {
	return &command.RequestOp{Request: &command.RequestOp_RequestPut{RequestPut: p}}
}

func opDel(key, end string) *command.RequestOp {
	return &command.RequestOp{Request: &command.RequestOp_RequestDeleteRange{RequestDeleteRange: &command.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end), PrevKv: true}}}
}

func opTxn(t *command.TxnRequest) *command.RequestOp {
	return &command.RequestOp{Request: &command.RequestOp_RequestTxn{RequestTxn: t}}
}

func ops(o ...*command.RequestOp) []*command.RequestOp { return o }

// Compare builders.
func cmpVersion(key string, r command.Compare_CompareResult, v int64) *command.Compare {
	return &command.Compare{Key: []byte(key), Target: command.Compare_VERSION, Result: r, TargetUnion: &command.Compare_Version{Version: v}}
}

func cmpCreate(key string, r command.Compare_CompareResult, v int64) *command.Compare {
	return &command.Compare{Key: []byte(key), Target: command.Compare_CREATE, Result: r, TargetUnion: &command.Compare_CreateRevision{CreateRevision: v}}
}

func cmpMod(key string, r command.Compare_CompareResult, v int64) *command.Compare {
	return &command.Compare{Key: []byte(key), Target: command.Compare_MOD, Result: r, TargetUnion: &command.Compare_ModRevision{ModRevision: v}}
}

func cmpValue(key string, r command.Compare_CompareResult, v string) *command.Compare {
	return &command.Compare{Key: []byte(key), Target: command.Compare_VALUE, Result: r, TargetUnion: &command.Compare_Value{Value: []byte(v)}}
}

func cmpLease(key string, r command.Compare_CompareResult, v int64) *command.Compare {
	return &command.Compare{Key: []byte(key), Target: command.Compare_LEASE, Result: r, TargetUnion: &command.Compare_Lease{Lease: v}}
}

func withEnd(c *command.Compare, end string) *command.Compare {
	c.RangeEnd = []byte(end)
	return c
}

// summarize renders a txn response compactly: succeeded and, per op, the
// essentials of its response.
func summarize(r *command.TxnResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v[", r.GetSucceeded())
	for i, op := range r.GetResponses() {
		if i > 0 {
			b.WriteString(" | ")
		}
		switch {
		case op.GetResponseRange() != nil:
			fmt.Fprintf(&b, "range %s", kvs(op.GetResponseRange().GetKvs()))
		case op.GetResponsePut() != nil:
			fmt.Fprintf(&b, "put prev=%s", kvs(nonNil(op.GetResponsePut().GetPrevKv())))
		case op.GetResponseDeleteRange() != nil:
			fmt.Fprintf(&b, "del %d", op.GetResponseDeleteRange().GetDeleted())
		case op.GetResponseTxn() != nil:
			fmt.Fprintf(&b, "txn %s", summarize(op.GetResponseTxn()))
		default:
			b.WriteString("empty")
		}
	}
	b.WriteString("]")
	return b.String()
}
