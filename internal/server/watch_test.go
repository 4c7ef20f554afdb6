package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/watch"
)

// nextResponse waits for the stream's next response (real apply timing, so
// a deadline rather than a sleep).
func nextResponse(t *testing.T, st *watch.Stream) watch.Response {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if r, ok := st.Next(); ok {
			return r
		}
		select {
		case <-st.Ready():
		case <-deadline:
			t.Fatal("no watch response within 5s")
		}
	}
}

// TestWatchFedByApply checks the wiring: applied writes reach watchers, a
// watch from "now" opened after a write was acknowledged starts after it,
// and a watch from the past catches up from the store, also across the
// snapshots this config takes every 40 entries.
func TestWatchFedByApply(t *testing.T) {
	cfg := testConfig(t, vfs.NewMem())
	cfg.WatchBufferEvents = 2
	s := startTestServer(t, cfg)
	defer s.Stop()
	ctx := context.Background()
	put := func(k, v string) int64 {
		_, h, err := s.Put(ctx, &command.PutRequest{Key: []byte(k), Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		return h.Revision
	}
	first := put("k", "0")
	st := s.NewWatchStream()
	defer st.Close()
	_, rev, err := st.Watch(watch.Request{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if rev < first {
		t.Fatalf("watch created at revision %d, before the acknowledged write at %d", rev, first)
	}
	var last int64
	for i := 1; i <= 100; i++ {
		last = put("k", fmt.Sprint(i))
	}
	past := s.NewWatchStream()
	defer past.Close()
	if _, _, err := past.Watch(watch.Request{Key: []byte("k"), StartRev: first, PrevKV: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		st    *watch.Stream
		from  int64
		count int
	}{{"from now", st, first + 1, 100}, {"from the past", past, first, 101}} {
		want := tc.from
		for n := 0; n < tc.count; {
			r := nextResponse(t, tc.st)
			if r.Canceled {
				t.Fatalf("%s: canceled: %+v", tc.name, r)
			}
			for _, e := range r.Events {
				if e.KV.ModRevision != want {
					t.Fatalf("%s: event at revision %d, want %d", tc.name, e.KV.ModRevision, want)
				}
				if tc.st == past && n > 0 && (e.PrevKV == nil || e.PrevKV.ModRevision != want-1) {
					t.Fatalf("%s: event at %d has prev %+v", tc.name, want, e.PrevKV)
				}
				want++
				n++
			}
		}
		if want != last+1 {
			t.Errorf("%s: ended at %d, want %d", tc.name, want-1, last)
		}
	}
	if n, unsynced := s.WatchStats(); n != 2 || unsynced != 0 {
		t.Errorf("WatchStats = %d, %d; want 2 watchers, none unsynced", n, unsynced)
	}
	if s.WatchRev() != last {
		t.Errorf("WatchRev = %d, want %d", s.WatchRev(), last)
	}
}
