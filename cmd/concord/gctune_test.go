package main

import "testing"

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},
		{10 * mib, 100},  // 64 MiB of headroom is more than GOGC=100 gives
		{64 * mib, 100},  // exactly the default
		{128 * mib, 50},  // 64 MiB of headroom
		{256 * mib, 25},  // a quarter, also 64 MiB
		{400 * mib, 25},  // a quarter
		{4096 * mib, 25}, // a quarter
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}
