package check

import (
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// kvState is one key's state in the register model.
type kvState struct {
	exists bool
	value  string
}

func (s kvState) String() string {
	if !s.exists {
		return "absent"
	}
	return fmt.Sprintf("%q", s.value)
}

// KVModel is the porcupine model of one etcd key as a register with put,
// get, compare-and-set and delete. Inputs and outputs are both *Op (the same
// pointer). An operation that is not OK (Ambiguous or Pending) is
// indefinite: it is given a return time of infinity by Linearizable, and its
// step accepts whatever outcome the state implies — applying it then is
// always allowed, and not applying it at all is the same as linearizing it
// after everything else. The model partitions histories by key.
func KVModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return kvState{} },
		Step: func(state, input, _ any) (bool, any) {
			return stepKV(state.(kvState), input.(*Op))
		},
		Hash: func(state any) uint64 {
			s := state.(kvState)
			h := fnv.New64a()
			if s.exists {
				h.Write([]byte{1})
				h.Write([]byte(s.value))
			}
			return h.Sum64()
		},
		DescribeOperation: func(input, _ any) string { return input.(*Op).String() },
		DescribeState:     func(state any) string { return state.(kvState).String() },
	}
}

// stepKV applies op to s and says whether op's answer is consistent with s.
func stepKV(s kvState, op *Op) (bool, kvState) {
	definite := op.Status == OK
	switch op.Kind {
	case Put:
		return true, kvState{exists: true, value: op.Value}
	case Get:
		if !definite {
			return true, s
		}
		if op.Found != s.exists || (s.exists && op.Got != s.value) {
			return false, s
		}
		return true, s
	case CAS:
		holds := (op.ExpectAbsent && !s.exists) || (!op.ExpectAbsent && s.exists && s.value == op.Expect)
		if definite && op.Succeeded != holds {
			return false, s
		}
		if holds {
			return true, kvState{exists: true, value: op.Value}
		}
		return true, s
	case Delete:
		if definite {
			want := int64(0)
			if s.exists {
				want = 1
			}
			if op.Deleted != want {
				return false, s
			}
		}
		return true, kvState{}
	}
	return false, s
}

// partitionByKey splits a history into one sub-history per key, in the
// order keys first appear.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	idx := map[string]int{}
	var out [][]porcupine.Operation
	for _, o := range history {
		k := o.Input.(*Op).Key
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], o)
	}
	return out
}

// linearizable selects the operations the register model judges: every
// write that may have happened and every linearizable read that answered.
func linearizableOps(ops []Op) []porcupine.Operation {
	var out []porcupine.Operation
	for i := range ops {
		o := &ops[i]
		switch {
		case o.Status == Failed:
			continue
		case o.Kind == Get && (o.Serializable || o.Status != OK):
			continue
		}
		out = append(out, porcupine.Operation{
			ClientId: o.Client,
			Input:    o,
			Output:   o,
			Call:     o.Call,
			Return:   o.returnTime(),
		})
	}
	return out
}

// KeyResult is the linearizability verdict for one key.
type KeyResult struct {
	Key     string
	Verdict Verdict
	// Ops is the number of operations judged for the key.
	Ops int
}

// Linearization is the result of Linearizable.
type Linearization struct {
	Report
	// Keys lists every key's verdict, in the order keys first appear.
	Keys []KeyResult
	// Anomalies holds, for each illegal key, the answered operation that
	// the longest partial linearization could not place (a stale read, an
	// impossible compare-and-set), in key order.
	Anomalies []Op

	ops     []porcupine.Operation
	timeout time.Duration
}

// Linearizable checks that the non-serializable operations of ops are
// linearizable with respect to KVModel, key by key. timeout bounds the whole
// check (0: unbounded); a key whose search it cuts short is Unknown — never
// Valid. Indefinite writes (Ambiguous, Pending) may take effect at any time
// after their call, or never; Failed operations and unanswered reads are
// ignored. The caller must not modify ops until it is done with the result.
func Linearizable(ops []Op, timeout time.Duration) Linearization {
	res := Linearization{Report: newReport("linearizable"), timeout: timeout}
	res.ops = linearizableOps(ops)
	model := KVModel()
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for _, part := range partitionByKey(res.ops) {
		key := part[0].Input.(*Op).Key
		kr := KeyResult{Key: key, Ops: len(part)}
		var budget time.Duration
		if timeout > 0 {
			budget = time.Until(deadline)
			if budget <= 0 {
				kr.Verdict = Unknown
				res.Keys = append(res.Keys, kr)
				res.unknown("key %q: not checked, checker budget %v exhausted", key, timeout)
				continue
			}
		}
		verdict, info := porcupine.CheckOperationsVerbose(model, part, budget)
		switch verdict {
		case porcupine.Ok:
			kr.Verdict = Valid
		case porcupine.Illegal:
			kr.Verdict = Invalid
			res.fail("key %q: %s", key, explainIllegal(part, info))
			if o, ok := firstUnplaced(part, info); ok {
				res.Anomalies = append(res.Anomalies, o)
			}
		default:
			kr.Verdict = Unknown
			res.unknown("key %q: checker timed out after %v on %d operations", key, budget, len(part))
		}
		res.Keys = append(res.Keys, kr)
	}
	return res
}

// explainIllegal describes an illegal single-key history: how far the
// longest linearizable prefix got, and the earliest operations it could not
// place.
func explainIllegal(part []porcupine.Operation, info porcupine.LinearizationInfo) string {
	parts := info.PartialLinearizations()
	var longest []int
	for _, p := range parts {
		for _, l := range p {
			if len(l) > len(longest) {
				longest = l
			}
		}
	}
	placed := make(map[int]bool, len(longest))
	for _, i := range longest {
		placed[i] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no linearization of %d operations; the longest linearizable prefix has %d", len(part), len(longest))
	if n := len(longest); n > 0 && longest[n-1] < len(part) {
		fmt.Fprintf(&b, ", ending with %s", part[longest[n-1]].Input.(*Op))
	}
	var unplaced []int
	for i := range part {
		if !placed[i] {
			unplaced = append(unplaced, i)
		}
	}
	slices.SortStableFunc(unplaced, func(a, b int) int {
		return compareInt64(part[a].Call, part[b].Call)
	})
	for j, i := range unplaced {
		if j == 3 {
			fmt.Fprintf(&b, "; ...")
			break
		}
		o := part[i].Input.(*Op)
		fmt.Fprintf(&b, "; cannot place %s (client %d, call %d", o, o.Client, o.Call)
		if o.Status == OK {
			fmt.Fprintf(&b, ", return %d", o.Return)
		}
		if o.Member != "" {
			fmt.Fprintf(&b, ", on %s", o.Member)
		}
		b.WriteString(")")
	}
	return b.String()
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Visualize writes porcupine's interactive HTML page for the checked
// history (every key), re-running the search with the same budget to
// collect the partial linearizations it draws.
func (l *Linearization) Visualize(w io.Writer) error {
	model := KVModel()
	_, info := porcupine.CheckOperationsVerbose(model, l.ops, l.timeout)
	return porcupine.Visualize(model, info, w)
}
