package apply

import (
	"errors"

	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/lease"
	"github.com/concord-db/concord/internal/mvcc"
)

// Lease rejections, with etcd's rpctypes texts. ErrLeaseNotFound is in
// errors.go.
var (
	ErrLeaseExist       = errors.New("etcdserver: lease already exists")
	ErrLeaseTTLTooLarge = errors.New("etcdserver: too large lease TTL")
)

// LeaseChangeKind says what an applied command did to a lease.
type LeaseChangeKind int

// Lease change kinds.
const (
	LeaseGranted LeaseChangeKind = iota + 1
	LeaseRevoked
	LeaseCheckpointed
)

// LeaseChange is one change to the lease table, reported in Result.Leases
// so the member's expiry tracker (not replicated state) can follow the
// table.
type LeaseChange struct {
	Kind LeaseChangeKind
	ID   int64
	// TTL is the lease's granted TTL in seconds (Granted, Checkpointed).
	TTL int64
	// RemainingMs is the checkpointed remaining time (Checkpointed).
	RemainingMs int64
}

// ValidateLeaseGrant checks a LeaseGrantRequest before it is proposed.
func ValidateLeaseGrant(r *command.LeaseGrantRequest) error {
	if r.GetTtl() > lease.MaxTTL {
		return ErrLeaseTTLTooLarge
	}
	return nil
}

// applyLeaseGrant grants a lease. The proposer chose the id (never 0) and
// raised the TTL to the minimum; a TTL below one second (only a broken
// proposer sends one) is granted as one second, a rule that needs no local
// configuration.
func (a *Applier) applyLeaseGrant(g *command.LeaseGrantRequest) Result {
	rev := a.store.Rev()
	id, ttl := g.GetId(), max(g.GetTtl(), 1)
	if id == lease.NoLease {
		return Result{Rev: rev, Err: ErrLeaseNotFound} // etcd's answer for id 0
	}
	if err := a.leaseTable.Grant(id, ttl); err != nil {
		switch {
		case errors.Is(err, lease.ErrExists):
			err = ErrLeaseExist
		case errors.Is(err, lease.ErrTTLTooLarge):
			err = ErrLeaseTTLTooLarge
		}
		return Result{Rev: rev, Err: err}
	}
	return Result{
		Resp:   &command.LeaseGrantResponse{Id: id, Ttl: ttl},
		Rev:    rev,
		Leases: []LeaseChange{{Kind: LeaseGranted, ID: id, TTL: ttl}},
	}
}

// applyLeaseRevoke removes a lease and deletes its keys in one revision (none
// if it had no keys), ascending by key, one DELETE event each. A key is
// deleted only if it is live and still names this lease, which the key
// tracking guarantees anyway.
func (a *Applier) applyLeaseRevoke(r *command.LeaseRevokeRequest) Result {
	keys, err := a.leaseTable.Revoke(r.GetId())
	if err != nil {
		return Result{Rev: a.store.Rev(), Err: ErrLeaseNotFound}
	}
	w := a.store.Write()
	for _, k := range keys {
		if kv, err := current(w, k); err == nil && kv != nil && kv.Lease == r.GetId() {
			w.DeleteRange(k, nil)
		}
	}
	events := w.End()
	return Result{
		Resp:   &command.LeaseRevokeResponse{},
		Rev:    a.store.Rev(),
		Events: events,
		Leases: []LeaseChange{{Kind: LeaseRevoked, ID: r.GetId()}},
	}
}

// applyLeaseCheckpoint records remaining TTLs; leases that no longer exist
// are skipped.
func (a *Applier) applyLeaseCheckpoint(c *command.LeaseCheckpointRequest) Result {
	var changes []LeaseChange
	for _, cp := range c.GetCheckpoints() {
		if !a.leaseTable.Checkpoint(cp.GetId(), cp.GetRemainingTtlMs()) {
			continue
		}
		l, _ := a.leaseTable.Get(cp.GetId(), false)
		changes = append(changes, LeaseChange{Kind: LeaseCheckpointed, ID: l.ID, TTL: l.TTL, RemainingMs: l.RemainingMs})
	}
	return Result{Rev: a.store.Rev(), Leases: changes}
}

// trackLeaseKeys keeps the table's key sets in step with the store after a
// write: a version that replaced or deleted a key detaches it from its old
// lease, a put with a lease attaches it. Puts of an unknown lease never reach
// the store (checkPut), so Attach cannot miss except under a test's fake
// LeaseLookup.
func (a *Applier) trackLeaseKeys(events []mvcc.Event) {
	for i := range events {
		ev := &events[i]
		if ev.PrevKV != nil && ev.PrevKV.Lease != lease.NoLease &&
			(ev.Type == mvcc.EventDelete || ev.PrevKV.Lease != ev.KV.Lease) {
			a.leaseTable.Detach(ev.PrevKV.Lease, ev.PrevKV.Key)
		}
		if ev.Type == mvcc.EventPut && ev.KV.Lease != lease.NoLease {
			a.leaseTable.Attach(ev.KV.Lease, ev.KV.Key)
		}
	}
}

// Lease returns lease id from the table (with its keys when withKeys). Safe
// from any goroutine.
func (a *Applier) Lease(id int64, withKeys bool) (lease.Lease, bool) {
	return a.leaseTable.Get(id, withKeys)
}

// Leases returns every lease (without keys), ascending by id. Safe from any
// goroutine.
func (a *Applier) Leases() []lease.Lease { return a.leaseTable.List() }
