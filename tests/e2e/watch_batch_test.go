package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestWatchBatchCongested checks --watch-batch-interval on the wire: a
// stream that keeps up gets one response per watcher and revision; a stream
// that fell behind waits out the interval before its next round, whose
// responses carry every revision their watchers missed; a progress request
// is answered without that wait; once it keeps up again it is not held
// back; no event is lost, repeated or reordered on the way.
func TestWatchBatchCongested(t *testing.T) {
	const (
		watchers = 100
		interval = 3 * time.Second
	)
	c := NewCluster(t, ClusterOptions{Size: 1, ExtraArgs: []string{"--watch-batch-interval", interval.String()}})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	cli := c.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A fixed 64 KiB stream window (no BDP growth): a client that does not
	// read holds the server's sends back after 64 KiB.
	conn, err := grpc.NewClient(c.Members[0].ClientAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := pb.NewWatchClient(conn).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range watchers {
		if err := st.Send(create("hot", "", 0, int64(i+1), false)); err != nil {
			t.Fatal(err)
		}
		if r, err := recvTimeout(t, st, 10*time.Second); err != nil || !r.Created {
			t.Fatalf("creating watcher %d: %v %v", i+1, r, err)
		}
	}

	next := make(map[int64]int64) // watcher -> next revision it must see
	put := func(v string) int64 {
		t.Helper()
		r, err := cli.Put(ctx, "hot", v)
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Revision
	}
	// read takes responses until every watcher has seen revision last (and,
	// with progress, then a stream-wide progress response at last or later)
	// and returns how many events each response carried and when it arrived.
	var arrived []time.Time
	read := func(last int64, progress bool) []int {
		t.Helper()
		var sizes []int
		arrived = arrived[:0]
		for done, progressed := 0, !progress; done < watchers || !progressed; {
			r, err := recvTimeout(t, st, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Events) == 0 && progress && r.WatchId == -1 && !r.Canceled && r.Header.Revision >= last {
				if done < watchers {
					t.Fatalf("progress at revision %d before every watcher had its events", r.Header.Revision)
				}
				progressed = true
				continue
			}
			if r.Canceled || len(r.Events) == 0 {
				t.Fatalf("unexpected response %v", r)
			}
			for _, e := range r.Events {
				if want := next[r.WatchId]; want != 0 && e.Kv.ModRevision != want {
					t.Fatalf("watcher %d: got revision %d, want %d", r.WatchId, e.Kv.ModRevision, want)
				}
				next[r.WatchId] = e.Kv.ModRevision + 1
			}
			if next[r.WatchId] == last+1 {
				done++
			}
			sizes = append(sizes, len(r.Events))
			arrived = append(arrived, time.Now())
		}
		return sizes
	}
	count := func(sizes []int, n int) (k int) {
		for _, s := range sizes {
			if s == n {
				k++
			}
		}
		return k
	}

	// Keeping up: each revision read before the next put.
	for i := range 3 {
		rev := put(fmt.Sprint("a", i))
		if sizes := read(rev, false); len(sizes) != watchers || count(sizes, 1) != watchers {
			t.Fatalf("keeping up, put %d: %d responses %v, want %d of one event", i, len(sizes), sizes, watchers)
		}
	}

	// Falling behind: 4 KiB values, not read while ten revisions are
	// written. A round sending them blocks on the window after a third of
	// the watchers or so; all of them pile up revisions, and a round that
	// finds most of its watchers more than a revision behind is congested:
	// the stream then waits out the interval before its next round, whose
	// responses carry several revisions each.
	big := strings.Repeat("x", 4<<10)
	var last int64
	for range 10 {
		last = put(big)
	}
	behind := read(last, false)
	gap, after := time.Duration(0), 0 // the longest pause, and the response after it
	for i := 1; i < len(arrived); i++ {
		if d := arrived[i].Sub(arrived[i-1]); d > gap {
			gap, after = d, i
		}
	}
	if gap < interval/2 {
		t.Fatalf("no wait between rounds: longest pause %v in %d responses, events per response %v", gap, len(behind), behind)
	}
	if behind[after] < 2 {
		t.Fatalf("the first response after the wait carried %d event(s), want several", behind[after])
	}

	// A progress request is not made to wait: the same congestion, with a
	// progress request sent before the stream is read, gets every event and
	// the progress response without a pause of the interval.
	for range 10 {
		last = put(big)
	}
	progressReq := &pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}
	if err := st.Send(progressReq); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	read(last, true)
	if took := time.Since(start); took >= interval/2 {
		t.Fatalf("with a progress request pending, the events and the progress response took %v (interval %v)", took, interval)
	}

	// Keeping up again: the round after the wait sent a few revisions per
	// response quickly, so the stream's rounds go at once again.
	for i := range 3 {
		start := time.Now()
		rev := put(fmt.Sprint("d", i))
		sizes := read(rev, false)
		if len(sizes) != watchers || count(sizes, 1) != watchers {
			t.Fatalf("keeping up again, put %d: %d responses %v, want %d of one event", i, len(sizes), sizes, watchers)
		}
		if took := time.Since(start); took >= interval {
			t.Fatalf("keeping up again, put %d: events took %v, the batch interval is %v", i, took, interval)
		}
	}
}
