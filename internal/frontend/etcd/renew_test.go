package etcd

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeLeader plays the leader's RenewBatch: it records each call and holds
// it until released; a lease's TTL is its ID times 10.
type fakeLeader struct {
	mu      sync.Mutex
	calls   []renewLane
	batches [][]int64
	release chan struct{}
	err     error
	short   bool // answer one TTL too few
}

func (f *fakeLeader) call(b *renewBatch) ([]int64, error) {
	f.mu.Lock()
	f.calls = append(f.calls, b.lane)
	f.batches = append(f.batches, slices.Clone(b.ids))
	f.mu.Unlock()
	<-f.release
	if f.err != nil {
		return nil, f.err
	}
	ttls := make([]int64, len(b.ids))
	for i, id := range b.ids {
		ttls[i] = id * 10
	}
	if f.short {
		ttls = ttls[1:]
	}
	return ttls, nil
}

func newTestForwarder(l *fakeLeader) *renewForwarder {
	return &renewForwarder{call: l.call, lanes: make(map[renewLane]*renewBatch)}
}

type renewResult struct {
	id, ttl int64
	err     error
}

// renewAll starts one renewal per id on lane and returns where their
// results arrive.
func renewAll(f *renewForwarder, lane renewLane, ids ...int64) chan renewResult {
	out := make(chan renewResult, len(ids))
	for _, id := range ids {
		go func() {
			ttl, err := f.renew(context.Background(), lane, nil, id)
			out <- renewResult{id, ttl, err}
		}()
	}
	return out
}

func TestRenewForwarderBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leader := &fakeLeader{release: make(chan struct{})}
		f := newTestForwarder(leader)
		a := renewLane{leaderURL: "http://l", token: "tok-a"}
		b := renewLane{leaderURL: "http://l", token: "tok-b"}

		// An idle lane sends a renewal at once, alone; another lane is
		// independent of it.
		first := renewAll(f, a, 1)
		synctest.Wait()
		other := renewAll(f, b, 2)
		synctest.Wait()
		// Renewals arriving while lane a's call is in flight wait for it.
		waiting := renewAll(f, a, 3, 4, 5, 3)
		synctest.Wait()
		if got := len(leader.batches); got != 2 {
			t.Fatalf("%d calls in flight, want 2 (one per lane)", got)
		}

		// Releasing the first calls sends the four waiting as one batch.
		leader.release <- struct{}{}
		leader.release <- struct{}{}
		synctest.Wait()
		for _, r := range []renewResult{<-first, <-other} {
			if r.err != nil || r.ttl != r.id*10 {
				t.Errorf("renew(%d) = %d, %v; want %d", r.id, r.ttl, r.err, r.id*10)
			}
		}
		if got := len(leader.batches); got != 3 {
			t.Fatalf("%d calls, want 3", got)
		}
		if l, ids := leader.calls[2], slices.Sorted(slices.Values(leader.batches[2])); l != a || !slices.Equal(ids, []int64{3, 3, 4, 5}) {
			t.Errorf("third call: lane %v ids %v, want lane %v ids [3 3 4 5]", l, ids, a)
		}
		leader.release <- struct{}{}
		for range 4 {
			if r := <-waiting; r.err != nil || r.ttl != r.id*10 {
				t.Errorf("batched renew(%d) = %d, %v; want %d", r.id, r.ttl, r.err, r.id*10)
			}
		}
		synctest.Wait()
		if len(f.lanes) != 0 {
			t.Errorf("lanes left after every call returned: %v", f.lanes)
		}
	})
}

func TestRenewForwarderErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leader := &fakeLeader{release: make(chan struct{})}
		f := newTestForwarder(leader)
		lane := renewLane{leaderURL: "http://l"}

		// An error answers every renewal of the batch.
		first := renewAll(f, lane, 1)
		synctest.Wait()
		waiting := renewAll(f, lane, 2, 3)
		synctest.Wait()
		leader.err = status.Error(codes.Unavailable, "not leader")
		leader.release <- struct{}{}
		leader.release <- struct{}{}
		for _, ch := range []chan renewResult{first, waiting, waiting} {
			if r := <-ch; status.Code(r.err) != codes.Unavailable {
				t.Errorf("renew(%d) = %d, %v; want the call's error", r.id, r.ttl, r.err)
			}
		}

		// A leader that answers too few TTLs fails the batch.
		leader.err, leader.short = nil, true
		short := renewAll(f, lane, 7)
		synctest.Wait()
		leader.release <- struct{}{}
		if r := <-short; status.Code(r.err) != codes.Internal {
			t.Errorf("renew with a short answer = %d, %v; want Internal", r.ttl, r.err)
		}

		// A caller whose context ends stops waiting; the batch goes on.
		leader.short = false
		busy := renewAll(f, lane, 8)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		gaveUp := make(chan error, 1)
		go func() {
			_, err := f.renew(ctx, lane, nil, 9)
			gaveUp <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Errorf("renew after cancel = %v, want context.Canceled", err)
		}
		leader.release <- struct{}{}
		leader.release <- struct{}{}
		<-busy
		synctest.Wait()
		if last := leader.batches[len(leader.batches)-1]; !slices.Equal(last, []int64{9}) {
			t.Errorf("last batch %v, want [9] (sent though its caller left)", last)
		}
	})
}

func TestVarints(t *testing.T) {
	for _, vs := range [][]int64{nil, {0}, {1, 300, math.MaxInt64}, {-1, math.MinInt64, 7}} {
		b := appendVarints(nil, vs)
		got, err := decodeVarints(b)
		if err != nil || !slices.Equal(got, vs) {
			t.Errorf("decodeVarints(appendVarints(%v)) = %v, %v", vs, got, err)
		}
	}
	for _, b := range [][]byte{{0x80}, {0x01, 0xff}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if got, err := decodeVarints(b); err == nil {
			t.Errorf("decodeVarints(%x) = %v, want an error", b, got)
		}
	}
}

// FuzzDecodeVarints: any bytes either fail to decode or decode to values
// that survive a round trip.
func FuzzDecodeVarints(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendVarints(nil, []int64{1, 300, -1}))
	f.Add([]byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := decodeVarints(b)
		if err != nil {
			return
		}
		again, err := decodeVarints(appendVarints(nil, vs))
		if err != nil || !slices.Equal(again, vs) {
			t.Fatalf("round trip of %v = %v, %v", vs, again, err)
		}
	})
}
