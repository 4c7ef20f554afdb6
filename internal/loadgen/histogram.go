package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Bucket layout (log-linear, in the manner of HdrHistogram with two
// significant decimal digits):
//
//   - values below 2^subBucketBits ns (256 ns) get one bucket each, so they are
//     exact;
//   - every power of two above that is split into subBucketHalf (128) equal
//     buckets, so a bucket is at most 1/128 of its lower bound wide and the
//     midpoint we report is within 0.4% of any value in it;
//   - values of 2^maxValueBits ns (about 68.7 s) and more share the last bucket;
//     Max still reports them exactly.
//
// For v >= 256 with s = bitlen(v) - subBucketBits and m = v >> s (so m is in
// [128, 256)), the index is s*subBucketHalf + m. That continues the exact
// range without a gap: s = 1 starts at index 256.
const (
	subBucketBits  = 8
	subBucketCount = 1 << subBucketBits // 256
	subBucketHalf  = subBucketCount / 2 // 128
	maxValueBits   = 36                 // 2^36 ns ≈ 68.7 s, above the 60 s we promise
	maxShift       = maxValueBits - subBucketBits
	numBuckets     = (maxShift+1)*subBucketHalf + subBucketHalf // 3840

	maxTrackable = uint64(1)<<maxValueBits - 1
)

// Histogram records latencies in log-linear buckets, accurate to well within
// 1% from 1µs to 60s. The zero value is empty and ready to use.
//
// A Histogram is not safe for concurrent use: give each goroutine its own and
// Merge them when the goroutines are done. Record never allocates. A Histogram
// is about 30 KiB, so allocate it with new rather than copying it around.
type Histogram struct {
	counts   [numBuckets]uint64
	n        uint64
	sum      uint64  // nanoseconds; 2^64 ns is 584 years of latency
	sumSq    float64 // for Stddev; float because 60 s squared overflows uint64 ns²
	min, max uint64
}

// bucketIndex maps a non-negative value in nanoseconds to its bucket.
func bucketIndex(v uint64) int {
	if v > maxTrackable {
		v = maxTrackable
	}
	if v < subBucketCount {
		return int(v)
	}
	s := bits.Len64(v) - subBucketBits
	return s*subBucketHalf + int(v>>uint(s))
}

// bucketBounds returns the smallest and largest value that map to bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subBucketCount {
		return uint64(i), uint64(i)
	}
	s := i/subBucketHalf - 1
	m := uint64(i - s*subBucketHalf)
	return m << uint(s), (m+1)<<uint(s) - 1
}

// Record adds one observation. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	var v uint64
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
	f := float64(v)
	h.sumSq += f * f
}

// Merge adds every observation of o to h. o is not changed.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
	h.sumSq += o.sumSq
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest observation exactly, or 0 if there are none.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest observation exactly, or 0 if there are none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact arithmetic mean, or 0 if there are no observations.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Stddev returns the population standard deviation, or 0 if there are no
// observations.
func (h *Histogram) Stddev() time.Duration {
	if h.n == 0 {
		return 0
	}
	mean := float64(h.sum) / float64(h.n)
	variance := h.sumSq/float64(h.n) - mean*mean
	if variance <= 0 { // rounding can push a constant series slightly negative
		return 0
	}
	return time.Duration(math.Sqrt(variance))
}

// Percentile returns the nearest-rank p-th percentile (p in [0, 100]): the
// midpoint of the bucket holding the ceil(p/100·Count())-th smallest
// observation, clamped to [Min, Max]. Percentile(0) is Min and Percentile(100)
// is Max. It returns 0 for an empty histogram; p outside [0, 100] is clamped.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	switch {
	case p <= 0 || math.IsNaN(p):
		return time.Duration(h.min)
	case p >= 100:
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, hi := bucketBounds(i)
		v := lo + (hi-lo)/2
		v = max(v, h.min)
		v = min(v, h.max)
		return time.Duration(v)
	}
	return time.Duration(h.max) // unreachable while counts and n agree
}
