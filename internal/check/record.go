package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// ErrBadHistory: a saved history could not be read back.
var ErrBadHistory = errors.New("check: bad history")

// MarshalText writes the kind's name, so saved histories read as words.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	for c := Put; c <= Delete; c++ {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("%w: unknown kind %q", ErrBadHistory, b)
}

// MarshalText writes the status's name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status's name.
func (s *Status) UnmarshalText(b []byte) error {
	for c := Pending; c <= Ambiguous; c++ {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("%w: unknown status %q", ErrBadHistory, b)
}

// Annotation marks an interval of a run that is not a client operation: a
// fault, a leader's term, a process kill, or a remark on one client's
// operation. Times are in the history's unit. Tag groups annotations into
// one row of the visualization ("nemesis", "leader"); an empty Tag puts the
// annotation in Client's row.
type Annotation struct {
	Tag         string `json:"tag,omitempty"`
	Client      int    `json:"client,omitempty"`
	Start       int64  `json:"start"`
	End         int64  `json:"end"`
	Description string `json:"description"`
	Details     string `json:"details,omitempty"`
	// Color is a CSS background color (empty: porcupine's default).
	Color string `json:"color,omitempty"`
}

// Recording is everything a run recorded, as saved in history.json: the
// client operations, the fenced writes, the watch streams, the committed
// history read back at the end and the annotations. Times are nanoseconds
// since the run started.
type Recording struct {
	Ops         []Op          `json:"ops"`
	Fenced      []FencedWrite `json:"fenced,omitempty"`
	GuardKey    string        `json:"guard_key,omitempty"`
	Watches     []WatchStream `json:"watches,omitempty"`
	Committed   *Committed    `json:"committed,omitempty"`
	Annotations []Annotation  `json:"annotations,omitempty"`
}

// WriteJSON saves r as compact JSON (a minute's run is ~10^5 operations).
func (r *Recording) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// ReadRecording reads back what WriteJSON wrote.
func ReadRecording(rd io.Reader) (*Recording, error) {
	var r Recording
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, ErrBadHistory) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrBadHistory, err)
	}
	return &r, nil
}

// ResolveAmbiguous returns a copy of ops in which every Ambiguous or Pending
// Put or CAS whose value is not in the committed history is Failed: values
// are unique, so a write whose value the store never held never took
// effect. It is sound only when c holds every change to the keys of ops
// from before the first operation on (a run on keys of its own, read back
// from the revision before it began); with c nil, ops is returned
// unchanged. It keeps porcupine's search small when faults leave many
// writes unanswered, since every indefinite write multiplies the
// linearizations to try.
func ResolveAmbiguous(ops []Op, c *Committed) []Op {
	out := slices.Clone(ops)
	if c == nil {
		return out
	}
	held := make(map[string]bool, len(c.Changes))
	for _, ch := range c.Changes {
		if !ch.Delete {
			held[ch.Key+"\x00"+ch.Value] = true
		}
	}
	for i := range out {
		o := &out[i]
		if o.Status == OK || o.Status == Failed || (o.Kind != Put && o.Kind != CAS) {
			continue
		}
		if !held[o.Key+"\x00"+o.Value] {
			o.Status = Failed
		}
	}
	return out
}

// VisualizeAnnotated writes porcupine's HTML page like Visualize, with
// anns drawn as extra rows, and one "anomaly" annotation on each operation
// the checker could not place (l.Anomalies), described by what.
func (l *Linearization) VisualizeAnnotated(w io.Writer, anns []Annotation, what func(Op) string) error {
	model := KVModel()
	_, info := porcupine.CheckOperationsVerbose(model, l.ops, l.timeout)
	var pa []porcupine.Annotation
	for _, a := range anns {
		pa = append(pa, porcupine.Annotation{Tag: a.Tag, ClientId: a.Client, Start: a.Start, End: a.End,
			Description: a.Description, Details: a.Details, BackgroundColor: a.Color})
	}
	for _, o := range l.Anomalies {
		desc := "anomaly: " + o.String()
		if what != nil {
			desc = what(o)
		}
		end := o.Return
		if o.Status != OK {
			end = o.Call
		}
		pa = append(pa, porcupine.Annotation{ClientId: o.Client, Start: o.Call, End: end,
			Description: desc, Details: fmt.Sprintf("client %d on %s: %s", o.Client, o.Member, o.String()),
			BackgroundColor: "#ff9a9a"})
	}
	info.AddAnnotations(pa)
	return porcupine.Visualize(model, info, w)
}

// firstUnplaced returns the earliest-called operation of an illegal
// single-key history that the longest partial linearization did not place:
// the operation porcupine could not explain.
func firstUnplaced(part []porcupine.Operation, info porcupine.LinearizationInfo) (Op, bool) {
	var longest []int
	for _, p := range info.PartialLinearizations() {
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
	best := -1
	for i := range part {
		if placed[i] {
			continue
		}
		// Prefer an answered operation: an indefinite one is never the
		// culprit on its own.
		o := part[i].Input.(*Op)
		if o.Status != OK {
			continue
		}
		if best < 0 || part[i].Call < part[best].Call {
			best = i
		}
	}
	if best < 0 {
		return Op{}, false
	}
	return *part[best].Input.(*Op), true
}

// DescribeAnomaly names an unplaceable operation in words: a read that
// returned a value older than one already written is a stale read.
func DescribeAnomaly(o Op) string {
	var b strings.Builder
	switch o.Kind {
	case Get:
		b.WriteString("stale read: ")
	case CAS:
		b.WriteString("impossible compare-and-set: ")
	default:
		b.WriteString("unexplained write: ")
	}
	b.WriteString(o.String())
	return b.String()
}
