package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Summary is the printable digest of a Result. Its JSON form is the machine
// interface of `concord bench --format json`: field names are stable and
// latencies are float milliseconds.
type Summary struct {
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Aborted   uint64 `json:"aborted"`
	// ElapsedSeconds is the wall time of the run.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// RequestsPerSec counts successful requests only, as etcd's benchmark does.
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Interrupted is empty for a complete run, else why it stopped early.
	Interrupted string            `json:"interrupted,omitempty"`
	ErrorCounts map[string]uint64 `json:"error_counts,omitempty"`
	LatencyMS   LatencySummary    `json:"latency_ms"`
}

// LatencySummary holds latency statistics of successful requests in
// milliseconds. Min, Max, Mean and Stddev are exact; the percentiles are
// within 1%.
type LatencySummary struct {
	Min    float64 `json:"min"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
	Max    float64 `json:"max"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	P999   float64 `json:"p99_9"`
}

// Summarize digests r.
func (r *Result) Summarize() Summary {
	h := r.Latency
	if h == nil {
		h = new(Histogram)
	}
	s := Summary{
		Succeeded:      r.Succeeded,
		Failed:         r.Failed,
		Aborted:        r.Aborted,
		ElapsedSeconds: r.Elapsed.Seconds(),
		ErrorCounts:    r.ErrorCounts,
		LatencyMS: LatencySummary{
			Min:    ms(h.Min()),
			Mean:   ms(h.Mean()),
			Stddev: ms(h.Stddev()),
			Max:    ms(h.Max()),
			P50:    ms(h.Percentile(50)),
			P90:    ms(h.Percentile(90)),
			P99:    ms(h.Percentile(99)),
			P999:   ms(h.Percentile(99.9)),
		},
	}
	if r.Elapsed > 0 {
		s.RequestsPerSec = float64(r.Succeeded) / r.Elapsed.Seconds()
	}
	if r.Interrupted != nil {
		s.Interrupted = r.Interrupted.Error()
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteText writes s for people, in the spirit of etcd's benchmark summary.
// Error messages are listed most frequent first.
func (s Summary) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("Summary:\n")
	p("  Total:\t%.4f s\n", s.ElapsedSeconds)
	p("  Requests:\t%d ok, %d failed, %d aborted\n", s.Succeeded, s.Failed, s.Aborted)
	p("  Requests/sec:\t%.1f\n", s.RequestsPerSec)
	if s.Interrupted != "" {
		p("  Interrupted:\t%s\n", s.Interrupted)
	}
	l := s.LatencyMS
	p("\nLatency (ms):\n")
	p("  Fastest:\t%.4f\n", l.Min)
	p("  Average:\t%.4f\n", l.Mean)
	p("  Stddev:\t%.4f\n", l.Stddev)
	p("  Slowest:\t%.4f\n", l.Max)
	p("  p50:\t%.4f\n", l.P50)
	p("  p90:\t%.4f\n", l.P90)
	p("  p99:\t%.4f\n", l.P99)
	p("  p99.9:\t%.4f\n", l.P999)
	if len(s.ErrorCounts) > 0 {
		type kind struct {
			msg string
			n   uint64
		}
		kinds := make([]kind, 0, len(s.ErrorCounts))
		for msg, n := range s.ErrorCounts {
			kinds = append(kinds, kind{msg, n})
		}
		slices.SortFunc(kinds, func(a, b kind) int {
			return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.msg, b.msg))
		})
		p("\nErrors:\n")
		for _, k := range kinds {
			p("  %d\t%s\n", k.n, k.msg)
		}
	}
	return tw.Flush()
}
