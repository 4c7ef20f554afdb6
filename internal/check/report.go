package check

import (
	"fmt"
	"strings"
)

// Verdict is a checker's conclusion. Unknown means the checker ran out of
// budget before deciding; it is never to be reported as Valid.
type Verdict uint8

// Verdicts.
const (
	Valid Verdict = iota + 1
	Invalid
	Unknown
)

func (v Verdict) String() string {
	switch v {
	case Valid:
		return "valid"
	case Invalid:
		return "invalid"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("verdict(%d)", v)
}

// Worst combines verdicts: Invalid beats Unknown beats Valid.
func Worst(vs ...Verdict) Verdict {
	out := Valid
	for _, v := range vs {
		switch {
		case v == Invalid:
			return Invalid
		case v == Unknown:
			out = Unknown
		}
	}
	return out
}

// maxProblems bounds how many problems one report lists; Count still counts
// them all.
const maxProblems = 20

// Report is one checker's result.
type Report struct {
	// Checker names the checker ("linearizable", "reads", ...).
	Checker string
	Verdict Verdict
	// Problems describe the first violations found (or why the verdict is
	// Unknown), at most maxProblems of them.
	Problems []string
	// Count is the number of violations found.
	Count int
}

func newReport(name string) Report { return Report{Checker: name, Verdict: Valid} }

// fail records one violation.
func (r *Report) fail(format string, args ...any) {
	r.Verdict = Invalid
	r.Count++
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// unknown records why the checker could not decide (unless it already found
// a violation, which stands).
func (r *Report) unknown(format string, args ...any) {
	if r.Verdict != Invalid {
		r.Verdict = Unknown
	}
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Checker, r.Verdict)
	if r.Count > 0 {
		fmt.Fprintf(&b, " (%d violations)", r.Count)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	if r.Count > len(r.Problems) && len(r.Problems) > 0 {
		fmt.Fprintf(&b, "\n  ... %d more", r.Count-len(r.Problems))
	}
	return b.String()
}
