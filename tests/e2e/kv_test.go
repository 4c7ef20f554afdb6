package e2e

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestKVThroughEveryMember drives every KV RPC through each member's own
// endpoint (followers included) and checks values and the revision clock:
// each write advances the revision by exactly one, reads and failed
// compares do not.
func TestKVThroughEveryMember(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 3})
	leader := c.WaitLeader(10 * c.Opts.ElectionTimeout)

	// The starting revision: whatever the bootstrap wrote (nothing, in etcd).
	get0, err := c.Client(0).Get(reqCtx(t), "nothing-here")
	if err != nil {
		t.Fatalf("Get(nothing-here): %v", err)
	}
	if len(get0.Kvs) != 0 || get0.Count != 0 {
		t.Fatalf("Get(nothing-here) = %v (count %d), want no keys", get0.Kvs, get0.Count)
	}
	rev := get0.Header.Revision

	for i, m := range c.Members {
		cli := c.Client(i)
		key := "kv/" + m.Name
		t.Logf("member %s (leader: %v)", m.Name, i == leader)

		// Put: one revision.
		put, err := cli.Put(reqCtx(t), key, "v1")
		if err != nil {
			t.Fatalf("%s: Put(%q): %v", m.Name, key, err)
		}
		rev++
		if put.Header.Revision != rev {
			t.Fatalf("%s: Put(%q) revision = %d, want %d", m.Name, key, put.Header.Revision, rev)
		}

		// Get sees it, with create = mod = that revision, version 1.
		get, err := cli.Get(reqCtx(t), key)
		if err != nil {
			t.Fatalf("%s: Get(%q): %v", m.Name, key, err)
		}
		if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "v1" {
			t.Fatalf("%s: Get(%q) = %v, want value v1", m.Name, key, get.Kvs)
		}
		kv := get.Kvs[0]
		if kv.CreateRevision != rev || kv.ModRevision != rev || kv.Version != 1 {
			t.Fatalf("%s: Get(%q) create/mod/version = %d/%d/%d, want %d/%d/1", m.Name, key, kv.CreateRevision, kv.ModRevision, kv.Version, rev, rev)
		}
		if get.Header.Revision != rev {
			t.Fatalf("%s: Get header revision = %d, want %d (reads do not advance it)", m.Name, get.Header.Revision, rev)
		}

		// Overwrite with prev_kv.
		put2, err := cli.Put(reqCtx(t), key, "v2", clientv3.WithPrevKV())
		if err != nil {
			t.Fatalf("%s: Put(%q, v2): %v", m.Name, key, err)
		}
		rev++
		if put2.Header.Revision != rev {
			t.Fatalf("%s: second Put revision = %d, want %d", m.Name, put2.Header.Revision, rev)
		}
		if put2.PrevKv == nil || string(put2.PrevKv.Value) != "v1" {
			t.Fatalf("%s: Put prev_kv = %v, want v1", m.Name, put2.PrevKv)
		}

		// Txn compare-and-swap, success branch: one revision.
		txn, err := cli.Txn(reqCtx(t)).
			If(clientv3.Compare(clientv3.Value(key), "=", "v2")).
			Then(clientv3.OpPut(key, "v3")).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			t.Fatalf("%s: CAS txn: %v", m.Name, err)
		}
		rev++
		if !txn.Succeeded {
			t.Fatalf("%s: CAS txn (value = v2) did not succeed", m.Name)
		}
		if txn.Header.Revision != rev {
			t.Fatalf("%s: CAS txn revision = %d, want %d", m.Name, txn.Header.Revision, rev)
		}
		if len(txn.Responses) != 1 || txn.Responses[0].GetResponsePut() == nil {
			t.Fatalf("%s: CAS txn responses = %v, want one put response", m.Name, txn.Responses)
		}

		// The same CAS again fails and runs the else branch (a read): no
		// new revision.
		txn, err = cli.Txn(reqCtx(t)).
			If(clientv3.Compare(clientv3.Value(key), "=", "v2")).
			Then(clientv3.OpPut(key, "never")).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			t.Fatalf("%s: failing CAS txn: %v", m.Name, err)
		}
		if txn.Succeeded {
			t.Fatalf("%s: CAS txn (value = v2) succeeded, but the value is v3", m.Name)
		}
		if txn.Header.Revision != rev {
			t.Fatalf("%s: failed CAS txn revision = %d, want %d (unchanged)", m.Name, txn.Header.Revision, rev)
		}
		if len(txn.Responses) != 1 || txn.Responses[0].GetResponseRange() == nil {
			t.Fatalf("%s: failed CAS txn responses = %v, want one range response", m.Name, txn.Responses)
		}
		rr := txn.Responses[0].GetResponseRange()
		if len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "v3" || rr.Kvs[0].ModRevision != rev || rr.Kvs[0].Version != 3 {
			t.Fatalf("%s: else-branch Get = %v, want value v3 at mod revision %d version 3", m.Name, rr.Kvs, rev)
		}

		// Delete: one revision, one key.
		del, err := cli.Delete(reqCtx(t), key, clientv3.WithPrevKV())
		if err != nil {
			t.Fatalf("%s: Delete(%q): %v", m.Name, key, err)
		}
		rev++
		if del.Deleted != 1 || del.Header.Revision != rev {
			t.Fatalf("%s: Delete(%q) = deleted %d at revision %d, want 1 at %d", m.Name, key, del.Deleted, del.Header.Revision, rev)
		}
		if len(del.PrevKvs) != 1 || string(del.PrevKvs[0].Value) != "v3" {
			t.Fatalf("%s: Delete prev_kvs = %v, want [v3]", m.Name, del.PrevKvs)
		}
		get, err = cli.Get(reqCtx(t), key)
		if err != nil {
			t.Fatalf("%s: Get after delete: %v", m.Name, err)
		}
		if len(get.Kvs) != 0 {
			t.Fatalf("%s: Get after delete = %v, want nothing", m.Name, get.Kvs)
		}
		// Deleting a missing key writes nothing.
		del, err = cli.Delete(reqCtx(t), key)
		if err != nil {
			t.Fatalf("%s: second Delete: %v", m.Name, err)
		}
		if del.Deleted != 0 || del.Header.Revision != rev {
			t.Fatalf("%s: Delete of a missing key = deleted %d at revision %d, want 0 at %d", m.Name, del.Deleted, del.Header.Revision, rev)
		}

		// History: the value at the first put's revision is still v1.
		old, err := cli.Get(reqCtx(t), key, clientv3.WithRev(put.Header.Revision))
		if err != nil {
			t.Fatalf("%s: Get(%q, rev %d): %v", m.Name, key, put.Header.Revision, err)
		}
		if len(old.Kvs) != 1 || string(old.Kvs[0].Value) != "v1" {
			t.Fatalf("%s: Get(%q, rev %d) = %v, want v1", m.Name, key, put.Header.Revision, old.Kvs)
		}

		// Compact at the second put: reads below it fail, at it succeed, and
		// compaction itself does not use a revision.
		compactAt := put2.Header.Revision
		if _, err := cli.Compact(reqCtx(t), compactAt); err != nil {
			t.Fatalf("%s: Compact(%d): %v", m.Name, compactAt, err)
		}
		_, err = cli.Get(reqCtx(t), key, clientv3.WithRev(compactAt-1))
		if !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("%s: Get at rev %d after Compact(%d): err = %v, want %v", m.Name, compactAt-1, compactAt, err, rpctypes.ErrCompacted)
		}
		at, err := cli.Get(reqCtx(t), key, clientv3.WithRev(compactAt))
		if err != nil {
			t.Fatalf("%s: Get at the compacted revision %d: %v", m.Name, compactAt, err)
		}
		if len(at.Kvs) != 1 || string(at.Kvs[0].Value) != "v2" {
			t.Fatalf("%s: Get at rev %d = %v, want v2", m.Name, compactAt, at.Kvs)
		}
	}

	// Compaction used no revision: the next write is exactly rev+1.
	put, err := c.All().Put(reqCtx(t), "kv/after-compact", "x")
	if err != nil {
		t.Fatalf("Put after compactions: %v", err)
	}
	if put.Header.Revision != rev+1 {
		t.Fatalf("Put after compactions: revision %d, want %d", put.Header.Revision, rev+1)
	}
	rev++

	// Linearizable reads through followers see a write the leader just
	// acknowledged.
	leader = c.WaitLeader(10 * c.Opts.ElectionTimeout)
	var followers []int
	for i := range c.Members {
		if i != leader {
			followers = append(followers, i)
		}
	}
	for n := range 200 {
		f := followers[n%len(followers)]
		want := fmt.Sprintf("v%d", n)
		put, err := c.Client(leader).Put(reqCtx(t), "kv/linear", want)
		if err != nil {
			t.Fatalf("round %d: Put via leader %s: %v", n, c.Members[leader].Name, err)
		}
		rev++
		if put.Header.Revision != rev {
			t.Fatalf("round %d: Put revision = %d, want %d", n, put.Header.Revision, rev)
		}
		get, err := c.Client(f).Get(reqCtx(t), "kv/linear")
		if err != nil {
			t.Fatalf("round %d: Get via follower %s: %v", n, c.Members[f].Name, err)
		}
		if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != want {
			t.Fatalf("round %d: Get via follower %s = %v, want %q (stale read after an acknowledged write at revision %d)", n, c.Members[f].Name, get.Kvs, want, rev)
		}
		if get.Header.Revision < put.Header.Revision {
			t.Fatalf("round %d: follower %s header revision %d < acknowledged write revision %d", n, c.Members[f].Name, get.Header.Revision, put.Header.Revision)
		}
	}
}
