package watch

import (
	"fmt"
	"testing"

	"github.com/concord-db/concord/internal/mvcc"
)

// BenchmarkNotify measures the apply path's cost: one revision of 8 events
// offered to 1,000 watchers (500 single-key, 500 prefix watchers on distinct
// prefixes) spread over 100 streams. Consumers drain outside the timer.
func BenchmarkNotify(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			st := mvcc.NewStore()
			h, err := New(DefaultConfig(), st, 1)
			if err != nil {
				b.Fatal(err)
			}
			streams := make([]*Stream, 100)
			for i := range streams {
				streams[i] = h.NewStream()
			}
			for i := range n {
				s := streams[i%len(streams)]
				var r Request
				if i%2 == 0 {
					r = Request{Key: []byte(fmt.Sprintf("/registry/pods/ns%d/p%d", i%50, i))}
				} else {
					p := fmt.Sprintf("/registry/pods/ns%d/", i%50)
					r = Request{Key: []byte(p), End: []byte(p[:len(p)-1] + "0"), PrevKV: true}
				}
				if _, _, err := s.Watch(r); err != nil {
					b.Fatal(err)
				}
			}
			events := make([]mvcc.Event, 8)
			for i := range events {
				k := []byte(fmt.Sprintf("/registry/pods/ns%d/p%d", i*7%50, i*100))
				events[i] = mvcc.Event{Type: mvcc.EventPut, KV: mvcc.KeyValue{Key: k, Value: []byte("v")}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rev := int64(i + 2)
				for j := range events {
					events[j].KV.ModRevision = rev
				}
				h.Notify(rev, events)
				if i%256 == 255 {
					b.StopTimer()
					for _, s := range streams {
						drain(s)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkNotifyFanOut is the watch fan-out benchmark's shape (bench/):
// 10 streams × 100 watchers of one key, one event per revision, drained
// every 100 revisions as a congested stream is. ns/op is per revision, so
// per watcher offered it is ns/op ÷ 1,000. "notify" times the apply path
// alone, "notify+next" the consumers' draining too.
func BenchmarkNotifyFanOut(b *testing.B) {
	for _, drainTimed := range []bool{false, true} {
		name := "notify"
		if drainTimed {
			name = "notify+next"
		}
		b.Run(name, func(b *testing.B) {
			st := mvcc.NewStore()
			h, err := New(DefaultConfig(), st, 1)
			if err != nil {
				b.Fatal(err)
			}
			streams := make([]*Stream, 10)
			for i := range streams {
				streams[i] = h.NewStream()
				for range 100 {
					if _, _, err := streams[i].Watch(Request{Key: []byte("k")}); err != nil {
						b.Fatal(err)
					}
				}
			}
			events := []mvcc.Event{{Type: mvcc.EventPut, KV: mvcc.KeyValue{Key: []byte("k"), Value: []byte("data"), CreateRevision: 2, Version: 1}}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				rev := int64(i + 2)
				events[0].KV.ModRevision = rev
				h.Notify(rev, events)
				if i%100 == 99 {
					if !drainTimed {
						b.StopTimer()
					}
					for _, s := range streams {
						for {
							if _, ok := s.Next(); !ok {
								break
							}
						}
					}
					if !drainTimed {
						b.StartTimer()
					}
				}
			}
		})
	}
}
