package check

import (
	"fmt"
	"math"
	"sync"
)

// Kind is what a client operation does to one key.
type Kind uint8

// Operation kinds. Every one touches exactly one key, so a history can be
// checked key by key.
const (
	// Put writes Value.
	Put Kind = iota + 1
	// Get reads the key: linearizable, or local state when Serializable.
	Get
	// CAS writes Value only if the key holds Expect (or is absent, with
	// ExpectAbsent): an etcd txn comparing the value, a put on success.
	CAS
	// Delete removes the key.
	Delete
)

func (k Kind) String() string {
	switch k {
	case Put:
		return "put"
	case Get:
		return "get"
	case CAS:
		return "cas"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Status is what the client learned about an operation.
type Status uint8

// Statuses. The distinction between Failed and Ambiguous is the whole point
// of recording histories honestly: an error that proves the operation never
// reached the log (no leader to take a proposal, a request refused before it
// was proposed) is Failed; a timeout, a lost connection or a member crash
// after the request was handed over is Ambiguous — it may take effect at any
// time after its call, or never.
const (
	// Pending: no answer yet. Checkers treat it as Ambiguous.
	Pending Status = iota
	// OK: the answer arrived; the output fields are meaningful.
	OK
	// Failed: definitely not applied; checkers ignore the operation.
	Failed
	// Ambiguous: may or may not have been applied, at any time after Call.
	Ambiguous
)

func (s Status) String() string {
	switch s {
	case Pending:
		return "pending"
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Ambiguous:
		return "ambiguous"
	}
	return fmt.Sprintf("status(%d)", s)
}

// Op is one client operation: its input, when it was called and returned,
// and what it answered. Times are in any monotonic unit shared by the whole
// history (the simulation's virtual nanoseconds, or a live run's monotonic
// clock); only their order matters.
type Op struct {
	// Client is the issuing client, zero-based. A client issues one
	// operation at a time.
	Client int
	Kind   Kind
	Key    string
	// Value is what Put and CAS write.
	Value string
	// Expect is the value CAS compares against; with ExpectAbsent, CAS
	// requires the key to be absent instead.
	Expect       string
	ExpectAbsent bool
	// Serializable marks a Get served from a member's local state: not
	// linearizable, so only the Reads checker judges it.
	Serializable bool

	// Call and Return bound the operation in time. Return is meaningful
	// only when Status is OK.
	Call, Return int64
	Status       Status

	// Outputs, meaningful when Status is OK.
	// Found and Got: a Get's answer.
	Found bool
	Got   string
	// Succeeded: whether a CAS's comparison held (and it wrote).
	Succeeded bool
	// Deleted: how many keys a Delete removed (0 or 1).
	Deleted int64
	// Rev is the store revision in the response header: for a write the
	// revision it created (or the current one if it wrote nothing), for a
	// read the revision it read at.
	Rev int64

	// Member names the member that served the operation (diagnostics).
	Member string
}

// Writes reports whether the operation may change the store.
func (o *Op) Writes() bool { return o.Kind == Put || o.Kind == CAS || o.Kind == Delete }

// Acknowledged reports whether the client was told that the operation
// changed the store: an OK Put, a CAS that succeeded, a Delete that deleted.
func (o *Op) Acknowledged() bool {
	if o.Status != OK {
		return false
	}
	switch o.Kind {
	case Put:
		return true
	case CAS:
		return o.Succeeded
	case Delete:
		return o.Deleted > 0
	}
	return false
}

// Input describes the call, e.g. put("k", "v").
func (o *Op) Input() string {
	switch o.Kind {
	case Put:
		return fmt.Sprintf("put(%q, %q)", o.Key, o.Value)
	case Get:
		if o.Serializable {
			return fmt.Sprintf("sget(%q)", o.Key)
		}
		return fmt.Sprintf("get(%q)", o.Key)
	case CAS:
		if o.ExpectAbsent {
			return fmt.Sprintf("cas(%q, absent -> %q)", o.Key, o.Value)
		}
		return fmt.Sprintf("cas(%q, %q -> %q)", o.Key, o.Expect, o.Value)
	case Delete:
		return fmt.Sprintf("delete(%q)", o.Key)
	}
	return o.Kind.String()
}

// String describes the call and its answer, e.g. get("k") -> "v" @12.
func (o *Op) String() string {
	in := o.Input()
	if o.Status != OK {
		return fmt.Sprintf("%s -> %s", in, o.Status)
	}
	switch o.Kind {
	case Get:
		if !o.Found {
			return fmt.Sprintf("%s -> absent @%d", in, o.Rev)
		}
		return fmt.Sprintf("%s -> %q @%d", in, o.Got, o.Rev)
	case CAS:
		return fmt.Sprintf("%s -> %t @%d", in, o.Succeeded, o.Rev)
	case Delete:
		return fmt.Sprintf("%s -> %d @%d", in, o.Deleted, o.Rev)
	}
	return fmt.Sprintf("%s -> ok @%d", in, o.Rev)
}

// returnTime is when the operation can last take effect: its Return when
// answered, never otherwise (porcupine's encoding of an indefinite outcome).
func (o *Op) returnTime() int64 {
	if o.Status == OK {
		return o.Return
	}
	return math.MaxInt64
}

// Recorder collects a history as clients run. It is safe for concurrent use
// by many clients; each client must finish one operation before calling the
// next (the checkers assume it).
type Recorder struct {
	mu  sync.Mutex
	ops []Op
}

// Call records that op was issued at time now and returns its handle. op's
// input fields (Client, Kind, Key, Value, Expect, ExpectAbsent,
// Serializable) are kept; its outputs are ignored.
func (r *Recorder) Call(op Op, now int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Call, op.Return, op.Status = now, 0, Pending
	op.Found, op.Got, op.Succeeded, op.Deleted, op.Rev = false, "", false, 0, 0
	r.ops = append(r.ops, op)
	return len(r.ops) - 1
}

// Return records the answer to operation id at time now: out's output
// fields (Found, Got, Succeeded, Deleted, Rev, Member) are copied and the
// status becomes OK. An operation already settled is left alone.
func (r *Recorder) Return(id int, out Op, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op := &r.ops[id]
	if op.Status != Pending {
		return
	}
	op.Return, op.Status = now, OK
	op.Found, op.Got, op.Succeeded, op.Deleted, op.Rev = out.Found, out.Got, out.Succeeded, out.Deleted, out.Rev
	if out.Member != "" {
		op.Member = out.Member
	}
}

// Fail settles operation id without an answer: Failed when the error proves
// it was never applied, Ambiguous otherwise. An operation already settled is
// left alone.
func (r *Recorder) Fail(id int, definite bool, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op := &r.ops[id]
	if op.Status != Pending {
		return
	}
	op.Return = now
	op.Status = Ambiguous
	if definite {
		op.Status = Failed
	}
}

// Ops returns a copy of the history so far, in call order.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Change is one committed change to one key, as the store's history
// records it: the revision, and either the value put or a deletion.
type Change struct {
	Rev    int64
	Key    string
	Value  string
	Delete bool
}

func (c Change) String() string {
	if c.Delete {
		return fmt.Sprintf("@%d delete(%q)", c.Rev, c.Key)
	}
	return fmt.Sprintf("@%d put(%q, %q)", c.Rev, c.Key, c.Value)
}
