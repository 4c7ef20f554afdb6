package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// TestSTMBankTransfers runs concurrent transfers between accounts with
// clientv3's software transactional memory at serializable isolation; the
// total must never change and every transfer must have been applied once.
func TestSTMBankTransfers(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	const accounts, initial = 5, 100
	for i := range accounts {
		if _, err := c.All().Put(context.Background(), fmt.Sprintf("acct/%d", i), strconv.Itoa(initial)); err != nil {
			t.Fatal(err)
		}
	}
	const workers, transfers = 6, 25
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cli := c.Client(w % len(c.Members))
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range transfers {
				from, to := rng.IntN(accounts), rng.IntN(accounts)
				if from == to {
					to = (to + 1) % accounts
				}
				amount := 1 + rng.IntN(10)
				_, err := concurrency.NewSTM(cli, func(stm concurrency.STM) error {
					fk, tk := fmt.Sprintf("acct/%d", from), fmt.Sprintf("acct/%d", to)
					fv, _ := strconv.Atoi(stm.Get(fk))
					tv, _ := strconv.Atoi(stm.Get(tk))
					if fv < amount {
						return nil
					}
					stm.Put(fk, strconv.Itoa(fv-amount))
					stm.Put(tk, strconv.Itoa(tv+amount))
					return nil
				}, concurrency.WithIsolation(concurrency.Serializable))
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("STM transfer: %v", err)
	}
	resp, err := c.All().Get(context.Background(), "acct/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, kv := range resp.Kvs {
		v, err := strconv.Atoi(string(kv.Value))
		if err != nil || v < 0 {
			t.Errorf("%s = %q", kv.Key, kv.Value)
		}
		total += v
	}
	if len(resp.Kvs) != accounts || total != accounts*initial {
		t.Fatalf("after transfers: %d accounts holding %d, want %d holding %d", len(resp.Kvs), total, accounts, accounts*initial)
	}
}

// TestMutexFencing runs 10 contenders for one clientv3 concurrency.Mutex.
// Each holder increments a shared counter through a guarded resource that
// accepts a write only with a fencing token (the lock's revision) above the
// last one it saw. The count must be exact and the tokens strictly
// increasing — also while the leader is killed mid-run.
func TestMutexFencing(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	et := c.Opts.ElectionTimeout
	c.WaitLeader(10 * et)
	const contenders, rounds = 10, 8
	if _, err := c.All().Put(context.Background(), "counter", "0"); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		tokens []int64
	)
	// guarded increments the counter if token is newer than every token
	// the resource has accepted: the resource keeps its own last token.
	// A request cut off by the kill fails with Unavailable although it may
	// have been applied; like any client, the contenders retry, and the
	// guarded resource recognizes its own token from an uncertain attempt.
	record := func(token int64) {
		mu.Lock()
		tokens = append(tokens, token)
		mu.Unlock()
	}
	guarded := func(ctx context.Context, cli *clientv3.Client, token int64) error {
		uncertain := false
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				if attempt > 100 || ctx.Err() != nil {
					return fmt.Errorf("guarded increment with token %d gave up after %d attempts", token, attempt)
				}
				time.Sleep(50 * time.Millisecond) // bounded retry backoff
			}
			r, err := cli.Get(ctx, "counter")
			if err != nil {
				continue
			}
			fr, err := cli.Get(ctx, "fence")
			if err != nil {
				continue
			}
			var last int64
			if len(fr.Kvs) == 1 {
				last, _ = strconv.ParseInt(string(fr.Kvs[0].Value), 10, 64)
			}
			if uncertain && last == token {
				record(token) // the uncertain attempt was applied
				return nil
			}
			if token <= last {
				return fmt.Errorf("fencing token %d not above %d: a stale holder", token, last)
			}
			n, _ := strconv.Atoi(string(r.Kvs[0].Value))
			cmp := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision("counter"), "=", r.Kvs[0].ModRevision)}
			if len(fr.Kvs) == 1 {
				cmp = append(cmp, clientv3.Compare(clientv3.ModRevision("fence"), "=", fr.Kvs[0].ModRevision))
			} else {
				cmp = append(cmp, clientv3.Compare(clientv3.CreateRevision("fence"), "=", 0))
			}
			tr, err := cli.Txn(ctx).If(cmp...).Then(
				clientv3.OpPut("counter", strconv.Itoa(n+1)),
				clientv3.OpPut("fence", strconv.FormatInt(token, 10)),
			).Commit()
			if err != nil {
				uncertain = true
				continue
			}
			if tr.Succeeded {
				record(token)
				return nil
			}
		}
	}
	// retry runs op until it succeeds, at most 100 times 50ms apart: Lock
	// and Unlock are safe to repeat within one session.
	retry := func(ctx context.Context, op func(context.Context) error) error {
		var err error
		for attempt := 0; attempt < 100 && ctx.Err() == nil; attempt++ {
			if err = op(ctx); err == nil {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return err
	}

	var wg sync.WaitGroup
	errc := make(chan error, contenders)
	done := make(chan struct{})
	for i := range contenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each contender has its own client over every endpoint, as a
			// real application would; the harness's per-member clients are
			// replaced when a member restarts.
			cli, err := newClient(c.Endpoints())
			if err != nil {
				errc <- err
				return
			}
			defer cli.Close()
			sess, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
			if err != nil {
				errc <- err
				return
			}
			defer sess.Close()
			m := concurrency.NewMutex(sess, "/lock/")
			for range rounds {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if err := retry(ctx, m.Lock); err != nil {
					cancel()
					errc <- fmt.Errorf("contender %d lock: %w", i, err)
					return
				}
				err := guarded(ctx, cli, m.Header().Revision)
				if uerr := retry(ctx, m.Unlock); err == nil {
					err = uerr
				}
				cancel()
				if err != nil {
					errc <- fmt.Errorf("contender %d: %w", i, err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// Kill the leader once the run is under way (a fifth of the increments
	// done), and bring it back.
	pollUntil(60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens) >= contenders*rounds/5
	})
	if l := c.Leader(context.Background()); l >= 0 {
		c.Kill(l)
		c.WaitLeader(10 * et)
		c.Restart(l)
	}
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("contenders did not finish within 120s")
	}
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	r, err := c.All().Get(context.Background(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Kvs[0].Value); got != strconv.Itoa(contenders*rounds) {
		t.Errorf("counter = %s, want %d", got, contenders*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Errorf("fencing tokens not strictly increasing at %d: %d then %d", i, tokens[i-1], tokens[i])
		}
	}
}

// TestElection campaigns with three candidates: one leads, Observe sees it,
// Proclaim changes its value, Resign hands over, and a leader whose session
// expires (its client stops keeping the lease alive) is replaced.
func TestElection(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	newCandidate := func(i, ttl int) (*concurrency.Session, *concurrency.Election) {
		s, err := concurrency.NewSession(c.Client(i%len(c.Members)), concurrency.WithTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		return s, concurrency.NewElection(s, "/elect/")
	}
	s1, e1 := newCandidate(0, 60)
	defer s1.Close()
	if err := e1.Campaign(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	obsSess, observer := newCandidate(1, 60)
	defer obsSess.Close()
	obs := observer.Observe(ctx)
	expectLeader := func(want string) {
		t.Helper()
		for {
			select {
			case r, ok := <-obs:
				if !ok {
					t.Fatalf("observe channel closed waiting for %q", want)
				}
				if string(r.Kvs[0].Value) == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("observer never saw leader value %q", want)
			}
		}
	}
	expectLeader("one")
	if err := e1.Proclaim(ctx, "one-b"); err != nil {
		t.Fatal(err)
	}
	expectLeader("one-b")

	// A second candidate waits; it wins when the first resigns.
	s2, e2 := newCandidate(1, 1)
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "two") }()
	select {
	case err := <-won:
		t.Fatalf("second candidate won while the first leads: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-won; err != nil {
		t.Fatal(err)
	}
	expectLeader("two")

	// The leader's session expires when nobody keeps its lease alive: a
	// third candidate takes over without any resignation.
	s3, e3 := newCandidate(2, 60)
	defer s3.Close()
	won3 := make(chan error, 1)
	go func() { won3 <- e3.Campaign(ctx, "three") }()
	s2.Orphan() // stop keepalives; the lease expires after its TTL
	select {
	case err := <-won3:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("leadership did not pass after the leader's session expired")
	}
	expectLeader("three")
}
