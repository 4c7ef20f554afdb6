package apply

import (
	"errors"
	"testing"

	"github.com/concord-db/concord/internal/command"
)

// A put in one nested txn followed by a delete of the same key in a later
// sibling nested txn used to pass the duplicate check. mvcc keeps one
// version per key and revision, so the delete replaced the put: watchers in
// sync were sent PUT+DELETE, a watcher catching up from history got only a
// DELETE of a key that never existed, and with prev_kv the history read
// failed with ErrCompacted on a store that was never compacted (the watch
// was cancelled). Such a txn is now a duplicate; whatever a txn is allowed
// to do, its history must match its live events.
func TestReviewNestedPutThenDeleteHistory(t *testing.T) {
	tests := []struct {
		name string
		txn  *command.TxnRequest
	}{
		{"sibling nested txns", &command.TxnRequest{Success: ops(
			opTxn(&command.TxnRequest{Success: ops(opPut("k", "v"))}),
			opTxn(&command.TxnRequest{Success: ops(opDel("k", ""))}),
		)}},
		{"deeper put, range delete in else branch", &command.TxnRequest{Success: ops(
			opTxn(&command.TxnRequest{Success: ops(opTxn(&command.TxnRequest{Success: ops(opPut("k", "v"))}))}),
			opTxn(&command.TxnRequest{Compare: []*command.Compare{cmpVersion("zz", command.Compare_EQUAL, 1)}, Failure: ops(opDel("a", "z"))}),
		)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateTxn(tt.txn, 128); !errors.Is(err, ErrDuplicateKey) {
				t.Errorf("ValidateTxn = %v, want ErrDuplicateKey", err)
			}
			h := newHarness(t)
			h.put("a", "0")
			res := h.txn(tt.txn)
			if res.Err != nil {
				if !errors.Is(res.Err, ErrDuplicateKey) {
					t.Fatalf("txn: %v", res.Err)
				}
				return
			}
			st := h.a.Store()
			for _, prev := range []bool{false, true} {
				evs, _, err := st.Events([]byte("k"), nil, res.Rev, res.Rev, 0, prev)
				if err != nil {
					t.Fatalf("Events(prevKV=%v) = %v (compactRev %d)", prev, err, st.CompactRev())
				}
				var live int
				for _, e := range res.Events {
					if string(e.KV.Key) == "k" {
						live++
					}
				}
				if len(evs) != live {
					t.Errorf("Events(prevKV=%v): %d events, live had %d", prev, len(evs), live)
				}
			}
		})
	}
}

// The siblings' other orders and exclusive branches stay as they were.
func TestReviewNestedWritesStillAllowed(t *testing.T) {
	for name, txn := range map[string]*command.TxnRequest{
		"delete then put is still a duplicate": {Success: ops(
			opTxn(&command.TxnRequest{Success: ops(opDel("k", ""))}),
			opTxn(&command.TxnRequest{Success: ops(opPut("k", "v"))}),
		)},
	} {
		if err := ValidateTxn(txn, 128); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("%s: ValidateTxn = %v, want ErrDuplicateKey", name, err)
		}
	}
	for name, txn := range map[string]*command.TxnRequest{
		"put and delete in exclusive branches": {Success: ops(
			opTxn(&command.TxnRequest{Success: ops(opPut("k", "v")), Failure: ops(opDel("k", ""))}),
		)},
		"disjoint keys": {Success: ops(
			opTxn(&command.TxnRequest{Success: ops(opPut("k", "v"))}),
			opTxn(&command.TxnRequest{Success: ops(opDel("l", "m"))}),
		)},
		"two deletes": {Success: ops(
			opTxn(&command.TxnRequest{Success: ops(opDel("k", ""))}),
			opTxn(&command.TxnRequest{Success: ops(opDel("a", "z"))}),
		)},
	} {
		if err := ValidateTxn(txn, 128); err != nil {
			t.Errorf("%s: ValidateTxn = %v, want nil", name, err)
		}
	}
}
