package etcd

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/server"
	"github.com/concord-db/concord/internal/watch"
)

// watchService is etcd's Watch service. Each RPC is one watch.Stream served
// by the RPC's goroutine, which owns all of the stream's state: it handles
// requests (forwarded by a receiving goroutine) and sends every response, so
// replies go out in request order (clientv3 matches create replies FIFO) and
// a watcher's created reply precedes its events. A client that does not read
// blocks only its own RPC: the hub never waits for it (its watchers overflow
// into catching up from history).
type watchService struct {
	pb.UnimplementedWatchServer
	s *server.Server
	// fragmentBytes is where a response of a watcher that asked for
	// fragments is split: etcd uses --max-request-bytes plus the gRPC
	// overhead allowance.
	fragmentBytes int
}

func newWatchService(s *server.Server, cfg Config) *watchService {
	return &watchService{s: s, fragmentBytes: cfg.MaxRequestBytes + grpcOverheadBytes}
}

// watchRPC is the state of one Watch RPC, owned by its goroutine.
type watchRPC struct {
	svc      *watchService
	stream   grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]
	st       *watch.Stream
	fragment map[int64]bool // watchers that asked for fragmented responses
	events   eventCache
}

func (ws *watchService) Watch(stream grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]) error {
	ctx := stream.Context()
	st := ws.s.NewWatchStream()
	defer st.Close()
	rpc := &watchRPC{svc: ws, stream: stream, st: st, fragment: map[int64]bool{}}

	// Recv blocks; a goroutine forwards requests. It ends when the RPC does
	// (Recv fails once the handler returns).
	reqc := make(chan *pb.WatchRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqc <- req:
			case <-ctx.Done():
				return
			}
		}
	}()

	// etcd adds up to 10% jitter so that watchers created together do not
	// all get their notifications at once.
	interval := ws.s.WatchProgressNotifyInterval()
	progress := time.NewTicker(interval + time.Duration(rand.Int64N(int64(interval)/10+1)))
	defer progress.Stop()
	var leaderC <-chan time.Time
	every, times := ws.s.LeaderLossCheck()
	if requiresLeader(ctx) {
		t := time.NewTicker(every)
		defer t.Stop()
		leaderC = t.C
	}
	noLeader := 0

	// The stream sends in rounds (see round): a round takes what was
	// queued when it began, so that a stream that falls behind is not kept
	// sending one event per response for as long as writes keep coming.
	more := false // a round is under way
	var rd round
	batch := ws.s.WatchBatchInterval()
	var hold *time.Timer // set while a congested stream waits for its next round
	var holdC <-chan time.Time
	begin := func(held bool) {
		rd = round{start: time.Now(), held: held, budget: st.Queued()}
		more = true
	}
	release := func() {
		if hold != nil {
			hold.Stop()
			hold, holdC = nil, nil
			begin(false)
		}
	}
	defer func() {
		if hold != nil {
			hold.Stop()
		}
	}()
	for {
		var ready <-chan struct{}
		var poll bool
		if more {
			poll = true
		} else if hold == nil {
			ready = st.Ready()
		}
		if poll {
			// Keep serving requests, ticks and cancellation while a long
			// backlog drains.
			select {
			case req := <-reqc:
				if err := rpc.handle(req); err != nil {
					return err
				}
				if req.GetProgressRequest() != nil {
					rd.progress = true // its answer may be queued after this round
				}
				continue
			case <-progress.C:
				st.ProgressTick()
				continue
			case <-leaderC:
				if noLeader = rpc.checkLeader(noLeader); noLeader >= times {
					return rpctypes.ErrGRPCNoLeader
				}
				continue
			case <-ctx.Done():
				return watchCtxErr(ctx)
			case <-ws.s.Done():
				return rpctypes.ErrGRPCStopped
			default:
			}
			var r watch.Response
			ok := rd.responses < rd.budget
			if ok {
				r, ok = st.Next()
			}
			if ok {
				rd.add(&r)
				if err := rpc.send(&r); err != nil {
					return err
				}
				continue
			}
			// The round is over: wait out the interval if it was
			// congested, else go on with what is queued now, if anything.
			more = false
			if wait := rd.wait(time.Now(), batch); wait > 0 {
				hold = time.NewTimer(wait)
				holdC = hold.C
			} else if rd.responses == rd.budget && rd.budget > 0 {
				begin(false)
			}
			continue
		}
		select {
		case <-ready:
			begin(false)
		case <-holdC:
			hold, holdC = nil, nil
			begin(true)
		case req := <-reqc:
			if err := rpc.handle(req); err != nil {
				return err
			}
			if req.GetProgressRequest() != nil {
				// A client waiting on progress (a consistent read from a
				// cache, say) is not made to wait out the batch interval.
				release()
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				// The client closed its sending side; etcd keeps sending
				// until the RPC is cancelled.
				recvErr = nil
				continue
			}
			if ctx.Err() != nil {
				return watchCtxErr(ctx)
			}
			return err
		case <-progress.C:
			st.ProgressTick()
		case <-leaderC:
			if noLeader = rpc.checkLeader(noLeader); noLeader >= times {
				return rpctypes.ErrGRPCNoLeader
			}
		case <-ctx.Done():
			return watchCtxErr(ctx)
		case <-ws.s.Done():
			return rpctypes.ErrGRPCStopped
		}
	}
}

// congestedResponses is how many responses a round must send before it can
// count as congested: below it, per-response costs are small next to the
// latency a pause would add.
const congestedResponses = 64

// round is one turn of a stream's sending: the responses queued when it
// began, or fewer if Next runs out first. A stream answering many watchers
// pays a fixed cost per response on both sides (a gRPC message, and in
// clientv3 a hand-off between goroutines per response), so the number of
// responses, not of events, is what a busy stream's throughput depends on.
// A watcher's buffered events all go in one response, so the longer a
// stream waits between rounds, the more events each response carries.
type round struct {
	start     time.Time
	held      bool // it waited out a congested round's interval
	budget    int  // responses queued when it began: the round sends no more
	responses int
	behind    int  // responses that carried more than one revision
	revisions int  // the most revisions one response carried
	progress  bool // a client asked for progress during it: no wait after it
}

func (r *round) add(resp *watch.Response) {
	r.responses++
	revs := 0
	for i := range resp.Events {
		if i == 0 || resp.Events[i].KV.ModRevision != resp.Events[i-1].KV.ModRevision {
			revs++
		}
	}
	if revs > 1 {
		r.behind++
	}
	r.revisions = max(r.revisions, revs)
}

// wait returns how long the stream should wait, at now, before its next
// round. A round is congested when it answered many watchers and most of
// them had fallen more than a revision behind while waiting their turn: the
// stream is not keeping up with the writes. Its next round then starts no
// sooner than interval after this one started, so that each watcher's
// events of that interval go out as one response. This is what etcd does
// with a stream that falls behind (its watchers become "victims" and then
// "unsynced", caught up every 100 ms), with the trigger and the delay
// stated.
//
// A round that waited carries several revisions per response by design, so
// it is judged by what sending them one at a time would have cost: about
// its own time once per revision, since a response's fixed cost outweighs
// its events'. If that fits in the interval the stream keeps up again and
// its next round goes at once; a stream that keeps up is never delayed,
// nor is the answer to a progress request.
func (r *round) wait(now time.Time, interval time.Duration) time.Duration {
	if interval <= 0 || r.progress || r.responses < congestedResponses {
		return 0
	}
	if r.held {
		if now.Sub(r.start)*time.Duration(r.revisions) < interval {
			return 0
		}
	} else if 2*r.behind <= r.responses {
		return 0
	}
	return r.start.Add(interval).Sub(now)
}

// watchCtxErr is what etcd returns when the RPC's context ends.
func watchCtxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return rpctypes.ErrGRPCWatchCanceled
	}
	return toGRPC(ctx.Err())
}

// checkLeader counts consecutive checks without a leader.
func (r *watchRPC) checkLeader(n int) int {
	if r.svc.s.Leader() == 0 {
		return n + 1
	}
	return 0
}

func (r *watchRPC) header(rev int64) *pb.ResponseHeader {
	return header(r.svc.s.ResponseHeader(rev))
}

// handle serves one request, sending its reply (if any) at once.
func (r *watchRPC) handle(req *pb.WatchRequest) error {
	switch u := req.GetRequestUnion().(type) {
	case *pb.WatchRequest_CreateRequest:
		c := u.CreateRequest
		if c == nil {
			return nil
		}
		key := c.GetKey()
		if len(key) == 0 {
			key = []byte{0} // the smallest key, as etcd reads an empty one
		}
		if err := r.svc.s.RequireRead(r.stream.Context(), key, c.GetRangeEnd()); err != nil {
			// etcd: created and canceled, any auth failure reported as
			// permission denied; the stream stays open.
			return r.stream.Send(&pb.WatchResponse{
				Header:       r.header(r.svc.s.WatchRev()),
				WatchId:      c.GetWatchId(),
				Created:      true,
				Canceled:     true,
				CancelReason: rpctypes.ErrGRPCPermissionDenied.Error(),
			})
		}
		wr := watch.Request{
			ID:             c.GetWatchId(),
			Key:            c.GetKey(),
			End:            c.GetRangeEnd(),
			StartRev:       c.GetStartRevision(),
			PrevKV:         c.GetPrevKv(),
			ProgressNotify: c.GetProgressNotify(),
		}
		for _, f := range c.GetFilters() {
			switch f {
			case pb.WatchCreateRequest_NOPUT:
				wr.NoPut = true
			case pb.WatchCreateRequest_NODELETE:
				wr.NoDelete = true
			}
		}
		id, rev, err := r.st.Watch(wr)
		if err != nil {
			// etcd: created and canceled at once, watch id -1, the reason
			// in text.
			return r.stream.Send(&pb.WatchResponse{
				Header:       r.header(r.svc.s.WatchRev()),
				WatchId:      watch.AllWatchers,
				Created:      true,
				Canceled:     true,
				CancelReason: cancelReason(err),
			})
		}
		if c.GetFragment() {
			r.fragment[id] = true
		}
		return r.stream.Send(&pb.WatchResponse{Header: r.header(rev), WatchId: id, Created: true})
	case *pb.WatchRequest_CancelRequest:
		c := u.CancelRequest
		if c == nil {
			return nil
		}
		id := c.GetWatchId()
		if !r.st.Cancel(id) {
			return nil // etcd ignores an unknown id
		}
		delete(r.fragment, id)
		return r.stream.Send(&pb.WatchResponse{Header: r.header(r.svc.s.WatchRev()), WatchId: id, Canceled: true})
	case *pb.WatchRequest_ProgressRequest:
		if u.ProgressRequest != nil {
			r.st.RequestProgress()
		}
	}
	return nil
}

// send sends one hub response, in fragments if its watcher asked for them.
func (r *watchRPC) send(resp *watch.Response) error {
	var reason string
	if resp.Err != nil {
		reason = resp.Err.Error()
	}
	frag := r.fragment[resp.WatchID]
	if resp.Canceled {
		delete(r.fragment, resp.WatchID)
	}
	if !frag {
		return r.stream.SendMsg(&wireWatch{hdr: r.svc.s.ResponseHeader(resp.Rev), resp: resp, reason: reason, cache: &r.events})
	}
	out := &pb.WatchResponse{
		Header:          r.header(resp.Rev),
		WatchId:         resp.WatchID,
		Events:          toPBEvents(resp.Events),
		CompactRevision: resp.CompactRev,
		Canceled:        resp.Canceled,
		CancelReason:    reason,
	}
	return sendFragments(out, r.svc.fragmentBytes, r.stream.Send)
}

// sendFragments splits wr's events over several responses of at most limit
// bytes each (etcd's rule: a piece grows until the next event would reach
// the limit; a single event is never split, so a piece may exceed it). Every
// piece but the last carries fragment=true. A response under the limit, or
// with fewer than two events, goes whole.
func sendFragments(wr *pb.WatchResponse, limit int, send func(*pb.WatchResponse) error) error {
	if proto.Size(wr) < limit || len(wr.Events) < 2 {
		return send(wr)
	}
	piece := func(evs []*mvccpb.Event, fragment bool) *pb.WatchResponse {
		return &pb.WatchResponse{
			Header:          wr.Header,
			WatchId:         wr.WatchId,
			Created:         wr.Created,
			Canceled:        wr.Canceled,
			CompactRevision: wr.CompactRevision,
			CancelReason:    wr.CancelReason,
			Fragment:        fragment,
			Events:          evs,
		}
	}
	base := proto.Size(piece(nil, true))
	tag := protowire.SizeTag(11) // WatchResponse.events
	for i := 0; i < len(wr.Events); {
		size, j := base, i
		for ; j < len(wr.Events); j++ {
			n := tag + protowire.SizeBytes(proto.Size(wr.Events[j]))
			if j > i && size+n >= limit {
				break
			}
			size += n
		}
		if err := send(piece(wr.Events[i:j], j < len(wr.Events))); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// toPBEvents converts hub events to etcd's wire type, allocating the
// messages in two blocks rather than one by one.
func toPBEvents(evs []mvcc.Event) []*mvccpb.Event {
	if len(evs) == 0 {
		return nil
	}
	nkv := len(evs)
	for i := range evs {
		if evs[i].PrevKV != nil {
			nkv++
		}
	}
	msgs := make([]mvccpb.Event, len(evs))
	kvs := make([]mvccpb.KeyValue, nkv)
	out := make([]*mvccpb.Event, len(evs))
	k := 0
	next := func(kv *mvcc.KeyValue) *mvccpb.KeyValue {
		p := &kvs[k]
		k++
		p.Key, p.Value = kv.Key, kv.Value
		p.CreateRevision, p.ModRevision, p.Version, p.Lease = kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease
		return p
	}
	for i := range evs {
		e := &evs[i]
		m := &msgs[i]
		if e.Type == mvcc.EventDelete {
			m.Type = mvccpb.Event_DELETE
		}
		m.Kv = next(&e.KV)
		if e.PrevKV != nil {
			m.PrevKv = next(e.PrevKV)
		}
		out[i] = m
	}
	return out
}
