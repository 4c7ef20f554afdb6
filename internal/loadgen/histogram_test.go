package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketLayout(t *testing.T) {
	prevHi := uint64(0)
	for i := range numBuckets {
		lo, hi := bucketBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (contiguous)", i, lo, prevHi+1)
		}
		if got := bucketIndex(lo); got != i {
			t.Fatalf("bucketIndex(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketIndex(hi); got != i {
			t.Fatalf("bucketIndex(%d) = %d, want %d", hi, got, i)
		}
		// Above 1µs a bucket is at most 1/128 of its lower bound wide, which is
		// what makes the midpoint good to 0.4%.
		if lo >= 1000 && float64(hi-lo+1)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d [%d, %d] is %.3f%% wide", i, lo, hi, 100*float64(hi-lo+1)/float64(lo))
		}
		prevHi = hi
	}
	if prevHi != maxTrackable {
		t.Errorf("last bucket ends at %d, want %d", prevHi, maxTrackable)
	}
	if maxTrackable < uint64(60*time.Second) {
		t.Errorf("maxTrackable %v is below 60s", time.Duration(maxTrackable))
	}
	if got := bucketIndex(math.MaxUint64); got != numBuckets-1 {
		t.Errorf("bucketIndex(MaxUint64) = %d, want last bucket %d", got, numBuckets-1)
	}
}

// nearestRank is the exact percentile Histogram.Percentile approximates.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestPercentileAccuracy(t *testing.T) {
	const n = 20000
	gen := func(f func(r *rand.Rand) time.Duration) func() []time.Duration {
		return func() []time.Duration {
			r := rand.New(rand.NewPCG(1, 2)) // fixed seed: the test is deterministic
			s := make([]time.Duration, n)
			for i := range s {
				s[i] = f(r)
			}
			return s
		}
	}
	tests := []struct {
		name    string
		samples func() []time.Duration
	}{
		{"single", func() []time.Duration { return []time.Duration{1234567 * time.Nanosecond} }},
		{"constant 1ms", gen(func(*rand.Rand) time.Duration { return time.Millisecond })},
		{"sub-256ns exact", gen(func(r *rand.Rand) time.Duration { return time.Duration(r.IntN(256)) })},
		{"uniform 100µs-10ms", gen(func(r *rand.Rand) time.Duration {
			return 100*time.Microsecond + time.Duration(r.Int64N(int64(9900*time.Microsecond)))
		})},
		{"log-uniform 1µs-60s", gen(func(r *rand.Rand) time.Duration {
			return time.Duration(math.Exp(math.Log(1e3) + r.Float64()*(math.Log(60e9)-math.Log(1e3))))
		})},
		{"exponential mean 2ms", gen(func(r *rand.Rand) time.Duration {
			return time.Microsecond + time.Duration(r.ExpFloat64()*2e6)
		})},
		{"bimodal 1ms/500ms", gen(func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return 500*time.Millisecond + time.Duration(r.IntN(1e6))
			}
			return time.Millisecond + time.Duration(r.IntN(1e4))
		})},
	}
	percentiles := []float64{0, 0.1, 1, 25, 50, 90, 99, 99.9, 99.99, 100}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := tt.samples()
			var h Histogram
			for _, s := range samples {
				h.Record(s)
			}
			sorted := slices.Clone(samples)
			slices.Sort(sorted)
			for _, p := range percentiles {
				got, want := h.Percentile(p), nearestRank(sorted, p)
				relErr := math.Abs(float64(got-want)) / float64(want)
				if want == 0 {
					relErr = math.Abs(float64(got))
				}
				if relErr > 0.01 {
					t.Errorf("Percentile(%v) = %v, want %v ±1%% (off by %.3f%%)", p, got, want, 100*relErr)
				}
			}
			if got, want := h.Min(), sorted[0]; got != want {
				t.Errorf("Min() = %v, want %v", got, want)
			}
			if got, want := h.Max(), sorted[len(sorted)-1]; got != want {
				t.Errorf("Max() = %v, want %v", got, want)
			}
			if got, want := h.Count(), uint64(len(samples)); got != want {
				t.Errorf("Count() = %d, want %d", got, want)
			}
		})
	}
}

func TestStatsExact(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{2, 4, 4, 4, 5, 5, 7, 9} { // mean 5, stddev 2
		h.Record(d * time.Millisecond)
	}
	if got, want := h.Mean(), 5*time.Millisecond; got != want {
		t.Errorf("Mean() = %v, want %v", got, want)
	}
	if got, want := h.Stddev(), 2*time.Millisecond; got < want-time.Microsecond || got > want+time.Microsecond {
		t.Errorf("Stddev() = %v, want %v", got, want)
	}
}

func TestEdgeValues(t *testing.T) {
	tests := []struct {
		name                      string
		record                    []time.Duration
		wantCount                 uint64
		wantMin, wantMax, wantP50 time.Duration
	}{
		{name: "empty"},
		{name: "negative counts as zero", record: []time.Duration{-5}, wantCount: 1},
		{name: "beyond range keeps exact max", record: []time.Duration{2 * time.Minute}, wantCount: 1,
			wantMin: 2 * time.Minute, wantMax: 2 * time.Minute, wantP50: 2 * time.Minute},
		{name: "constant", record: []time.Duration{time.Second, time.Second, time.Second}, wantCount: 3,
			wantMin: time.Second, wantMax: time.Second, wantP50: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.record {
				h.Record(d)
			}
			if h.Count() != tt.wantCount || h.Min() != tt.wantMin || h.Max() != tt.wantMax {
				t.Errorf("Count, Min, Max = %d, %v, %v; want %d, %v, %v",
					h.Count(), h.Min(), h.Max(), tt.wantCount, tt.wantMin, tt.wantMax)
			}
			if got := h.Percentile(50); got != tt.wantP50 {
				t.Errorf("Percentile(50) = %v, want %v", got, tt.wantP50)
			}
			if got := h.Stddev(); got != 0 {
				t.Errorf("Stddev() = %v, want 0", got)
			}
		})
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var all, a, b, empty Histogram
	for i := range 5000 {
		d := time.Duration(r.Int64N(int64(time.Second)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var merged Histogram
	merged.Merge(&empty)
	merged.Merge(&a)
	merged.Merge(&empty)
	merged.Merge(&b)
	if merged.counts != all.counts {
		t.Error("merged bucket counts differ from recording everything into one histogram")
	}
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Errorf("merged Count/Min/Max/Mean = %d/%v/%v/%v, want %d/%v/%v/%v",
			merged.Count(), merged.Min(), merged.Max(), merged.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	if d := merged.Stddev() - all.Stddev(); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("merged Stddev = %v, want %v", merged.Stddev(), all.Stddev())
	}
	merged.Reset()
	if merged.Count() != 0 || merged.Percentile(50) != 0 {
		t.Errorf("after Reset: Count() = %d, Percentile(50) = %v; want 0, 0", merged.Count(), merged.Percentile(50))
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := new(Histogram)
	d := time.Duration(1)
	if allocs := testing.AllocsPerRun(1000, func() {
		h.Record(d)
		d = d*3 + 17
	}); allocs != 0 {
		t.Errorf("Record allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkRecord(b *testing.B) {
	h := new(Histogram)
	for i := range b.N {
		h.Record(time.Duration(i) * 997)
	}
}
