package main

// concord check: the clients — key-value register ops, the fenced lock, watchers.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/concord-db/concord/internal/check"
)

// kvClient runs one key-value client: linearizable gets, puts and
// compare-and-sets on keys, values unique ("c<client>-<n>").
func (r *checkRun) kvClient(ctx context.Context, id int, cli *clientv3.Client, member string, keys []string) {
	rng := rand.New(rand.NewPCG(uint64(r.f.seed), uint64(id)+1))
	last := map[string]string{}
	for n := 0; ctx.Err() == nil; n++ {
		key := keys[rng.IntN(len(keys))]
		op := check.Op{Client: id, Key: key, Member: member}
		switch p := rng.IntN(10); {
		case p < 4:
			op.Kind = check.Get
		case p < 7:
			op.Kind, op.Value = check.Put, fmt.Sprintf("c%d-%d", id, n)
		default:
			op.Kind, op.Value = check.CAS, fmt.Sprintf("c%d-%d", id, n)
			if v, ok := last[key]; ok {
				op.Expect = v
			} else {
				op.ExpectAbsent = true
			}
		}
		h := r.rec.Call(op, r.now())
		octx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
		out, err := doKV(octx, cli, op)
		cancel()
		if err != nil {
			// A write with no answer may still take effect; a read with
			// none is ignored either way.
			r.rec.Fail(h, op.Kind == check.Get, r.now())
			r.ambOps.Add(1)
			if ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		r.rec.Return(h, out, r.now())
		r.okOps.Add(1)
		switch {
		case op.Kind == check.Get && out.Found:
			last[key] = out.Got
		case op.Kind == check.Get:
			delete(last, key)
		case op.Kind == check.Put || out.Succeeded:
			last[key] = op.Value
		}
	}
}

// doKV performs op and returns its outputs.
func doKV(ctx context.Context, cli *clientv3.Client, op check.Op) (check.Op, error) {
	var out check.Op
	switch op.Kind {
	case check.Get:
		resp, err := cli.Get(ctx, op.Key)
		if err != nil {
			return out, err
		}
		out.Rev = resp.Header.Revision
		if len(resp.Kvs) > 0 {
			out.Found, out.Got = true, string(resp.Kvs[0].Value)
		}
	case check.Put:
		resp, err := cli.Put(ctx, op.Key, op.Value)
		if err != nil {
			return out, err
		}
		out.Rev = resp.Header.Revision
	case check.CAS:
		cmp := clientv3.Compare(clientv3.Value(op.Key), "=", op.Expect)
		if op.ExpectAbsent {
			cmp = clientv3.Compare(clientv3.CreateRevision(op.Key), "=", 0)
		}
		resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(op.Key, op.Value)).Commit()
		if err != nil {
			return out, err
		}
		out.Rev, out.Succeeded = resp.Header.Revision, resp.Succeeded
	default:
		return out, fmt.Errorf("check: kind %v not in the workload", op.Kind)
	}
	return out, nil
}

// lockClient takes a concurrency.Mutex over and over; while it holds it,
// it writes its fencing token (the lock key's create revision) to the
// guarded key three times with a txn that refuses a lower token. Every
// fifth hold it stalls like a holder in a long GC pause: it stops renewing
// its session's 2 s lease and waits past its expiry before writing, so
// another client takes the lock meanwhile and the guard must refuse the
// stale holder's writes. Faults make leases expire under holders too.
func (r *checkRun) lockClient(ctx context.Context, id int, cli *clientv3.Client) {
	var (
		sess     *concurrency.Session
		stopKeep context.CancelFunc = func() {}
	)
	defer func() {
		stopKeep()
		if sess != nil {
			sess.Orphan()
		}
	}()
	seq := 0
	for hold := 0; ctx.Err() == nil; {
		if sess != nil {
			select {
			case <-sess.Done():
				sess = nil
			default:
			}
		}
		if sess == nil {
			stopKeep()
			gctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
			lease, err := cli.Grant(gctx, 2)
			cancel()
			var kctx context.Context
			kctx, stopKeep = keepAliveContext(ctx)
			if err == nil {
				sess, err = concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithContext(kctx))
			}
			if err != nil {
				sess = nil
				pause(ctx, 100*time.Millisecond)
				continue
			}
		}
		m := concurrency.NewMutex(sess, r.lockPre)
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := m.Lock(lctx)
		cancel()
		if err != nil {
			pause(ctx, 50*time.Millisecond)
			continue
		}
		r.locks.Add(1)
		hold++
		gctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
		g, err := cli.Get(gctx, m.Key())
		cancel()
		if err == nil && len(g.Kvs) == 1 {
			tok := g.Kvs[0].CreateRevision
			if hold%5 == 0 {
				// The stall: the session dies with its lease.
				stopKeep()
				pause(ctx, 4*time.Second)
			}
			for range 3 {
				r.fencedWrite(ctx, cli, id, tok, seq)
				seq++
				pause(ctx, 30*time.Millisecond)
			}
		}
		uctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
		m.Unlock(uctx)
		cancel()
	}
}

// keepAliveContext is the context of one session's keep-alives: canceling
// it stops renewing the lease without revoking it.
func keepAliveContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (r *checkRun) fencedWrite(ctx context.Context, cli *clientv3.Client, id int, tok int64, seq int) {
	fw := check.FencedWrite{Client: id, Token: tok, Value: check.FenceValue(tok, id, seq), Call: r.now()}
	wctx, cancel := context.WithTimeout(ctx, r.f.opTimeout)
	resp, err := cli.Txn(wctx).
		If(clientv3.Compare(clientv3.Value(r.guard), "<", check.FenceBound(tok))).
		Then(clientv3.OpPut(r.guard, fw.Value)).Commit()
	cancel()
	fw.Return = r.now()
	if err != nil {
		fw.Status = check.Ambiguous
	} else {
		fw.Status, fw.Accepted, fw.Rev = check.OK, resp.Succeeded, resp.Header.Revision
	}
	r.mu.Lock()
	r.fenced = append(r.fenced, fw)
	r.mu.Unlock()
}

// checkWatcher watches the key-value prefix, reconnecting from the
// revision after the last event it got.
type checkWatcher struct {
	mu     sync.Mutex
	stream check.WatchStream
	next   int64
}

// waitFor waits up to limit for the watcher to pass rev.
func (cw *checkWatcher) waitFor(rev int64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		cw.mu.Lock()
		done := cw.next > rev
		cw.mu.Unlock()
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cw *checkWatcher) snapshot() check.WatchStream {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	s := cw.stream
	s.Events = slices.Clone(s.Events)
	return s
}
