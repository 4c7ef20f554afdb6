package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/concord-db/concord/internal/command"
)

// Alarm rejections, with etcd's rpctypes texts.
var (
	// ErrNoSpace refuses a command that would grow the store while the
	// NOSPACE alarm is active (or, before proposing, while the store is over
	// its quota).
	ErrNoSpace = errors.New("etcdserver: mvcc: database space exceeded")
	// ErrCorrupt refuses keyspace and lease commands while the CORRUPT alarm
	// is active.
	ErrCorrupt = errors.New("etcdserver: corrupt cluster")
)

// Quota costs, etcd's (server/storage/quota.go): what a command is assumed
// to add to the store on top of its key and value bytes.
const (
	putCostOverhead   = 256
	leaseCostOverhead = 64
)

// QuotaCost returns what cmd may add to the store in bytes, 0 for a command
// that cannot grow it (reads, deletes, compaction, alarms, lease revokes...).
// A txn costs its costlier branch. Pure; used both before proposing (the
// quota check) and at apply (refusal under the NOSPACE alarm).
func QuotaCost(cmd *command.Command) int64 {
	switch op := cmd.GetOp().(type) {
	case *command.Command_Put:
		return putCost(op.Put)
	case *command.Command_Txn:
		return txnCost(op.Txn)
	case *command.Command_LeaseGrant:
		return leaseCostOverhead
	}
	return 0
}

func putCost(p *command.PutRequest) int64 {
	return putCostOverhead + int64(len(p.GetKey())) + int64(len(p.GetValue()))
}

func txnCost(t *command.TxnRequest) int64 {
	branch := func(ops []*command.RequestOp) int64 {
		var n int64
		for _, op := range ops {
			switch r := op.GetRequest().(type) {
			case *command.RequestOp_RequestPut:
				n += putCost(r.RequestPut)
			case *command.RequestOp_RequestTxn:
				n += txnCost(r.RequestTxn)
			}
		}
		return n
	}
	return max(branch(t.GetSuccess()), branch(t.GetFailure()))
}

// refusedWhenCorrupt reports whether cmd is refused under the CORRUPT alarm:
// etcd's corrupt applier refuses every keyspace and lease operation. Alarms
// and member publication still apply, so an operator can disarm.
func refusedWhenCorrupt(cmd *command.Command) bool {
	switch cmd.GetOp().(type) {
	case *command.Command_Put, *command.Command_DeleteRange, *command.Command_Txn,
		*command.Command_Compaction, *command.Command_LeaseGrant, *command.Command_LeaseRevoke:
		return true
	}
	return false
}

// Admit is the deterministic rejection the alarm table imposes on cmd, nil
// when cmd may apply: ErrCorrupt under CORRUPT for keyspace and lease
// commands, ErrNoSpace under NOSPACE for commands that grow the store. The
// applier calls it before every command; the server calls it before
// proposing so a refused write costs no log entry. Safe from any goroutine.
func (a *Applier) Admit(cmd *command.Command) error {
	mask := a.alarms.mask.Load()
	if mask&alarmBit(command.AlarmRequest_CORRUPT) != 0 && refusedWhenCorrupt(cmd) {
		return ErrCorrupt
	}
	if mask&alarmBit(command.AlarmRequest_NOSPACE) != 0 && QuotaCost(cmd) > 0 {
		return ErrNoSpace
	}
	return nil
}

// alarmTable is the replicated set of active alarms, one entry per (member,
// alarm type). Writers hold Applier.mu and then mu; readers take mu (or read
// mask, which is updated under mu).
type alarmTable struct {
	mu     sync.RWMutex
	active []*command.AlarmMember // sorted by (alarm, member id)
	mask   atomic.Uint32          // bit t set iff some alarm of type t is active
}

func alarmBit(t command.AlarmRequest_AlarmType) uint32 { return 1 << uint32(t) }

func cmpAlarm(x, y *command.AlarmMember) int {
	if x.GetAlarm() != y.GetAlarm() {
		if x.GetAlarm() < y.GetAlarm() {
			return -1
		}
		return 1
	}
	switch {
	case x.GetMemberId() < y.GetMemberId():
		return -1
	case x.GetMemberId() > y.GetMemberId():
		return 1
	}
	return 0
}

// setLocked replaces the table; the caller holds t.mu for writing.
func (t *alarmTable) setLocked(active []*command.AlarmMember) {
	t.active = active
	var mask uint32
	for _, m := range active {
		mask |= alarmBit(m.GetAlarm())
	}
	t.mask.Store(mask)
}

func (t *alarmTable) list() []*command.AlarmMember {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*command.AlarmMember, len(t.active))
	for i, m := range t.active {
		out[i] = &command.AlarmMember{MemberId: m.GetMemberId(), Alarm: m.GetAlarm()}
	}
	return out
}

// activate adds (member, alarm) and returns the entry, existing or new.
func (t *alarmTable) activate(member uint64, alarm command.AlarmRequest_AlarmType) *command.AlarmMember {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := &command.AlarmMember{MemberId: member, Alarm: alarm}
	i, found := slices.BinarySearchFunc(t.active, m, cmpAlarm)
	if found {
		return &command.AlarmMember{MemberId: member, Alarm: alarm}
	}
	next := slices.Insert(slices.Clone(t.active), i, m)
	t.setLocked(next)
	return &command.AlarmMember{MemberId: member, Alarm: alarm}
}

// deactivate removes (member, alarm); false if it was not active.
func (t *alarmTable) deactivate(member uint64, alarm command.AlarmRequest_AlarmType) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, found := slices.BinarySearchFunc(t.active, &command.AlarmMember{MemberId: member, Alarm: alarm}, cmpAlarm)
	if !found {
		return false
	}
	t.setLocked(slices.Delete(slices.Clone(t.active), i, i+1))
	return true
}

// Alarms returns the active alarms sorted by type, then member id. Safe
// from any goroutine.
func (a *Applier) Alarms() []*command.AlarmMember { return a.alarms.list() }

// HasAlarm reports whether some member has raised an alarm of type t. Safe
// from any goroutine; cheap (one atomic load).
func (a *Applier) HasAlarm(t command.AlarmRequest_AlarmType) bool {
	return a.alarms.mask.Load()&alarmBit(t) != 0
}

// applyAlarm is etcd's alarm apply: GET lists the active alarms, ACTIVATE
// adds one (answering with it, also when it was already active; NONE is
// ignored), DEACTIVATE removes one (answering with it, or with nothing when
// it was not active). Alarms never change the revision.
func (a *Applier) applyAlarm(r *command.AlarmRequest) Result {
	resp := &command.AlarmResponse{}
	switch r.GetAction() {
	case command.AlarmRequest_GET:
		resp.Alarms = a.alarms.list()
	case command.AlarmRequest_ACTIVATE:
		if r.GetAlarm() != command.AlarmRequest_NONE {
			resp.Alarms = append(resp.Alarms, a.alarms.activate(r.GetMemberId(), r.GetAlarm()))
			a.logger.Warn("alarm raised", "alarm", r.GetAlarm().String(), "member", fmt.Sprintf("%x", r.GetMemberId()))
		}
	case command.AlarmRequest_DEACTIVATE:
		if a.alarms.deactivate(r.GetMemberId(), r.GetAlarm()) {
			resp.Alarms = append(resp.Alarms, &command.AlarmMember{MemberId: r.GetMemberId(), Alarm: r.GetAlarm()})
			a.logger.Info("alarm cleared", "alarm", r.GetAlarm().String(), "member", fmt.Sprintf("%x", r.GetMemberId()))
		}
	}
	return Result{Resp: resp, Rev: a.store.Rev()}
}

// appendAlarms encodes the alarm table for the applier snapshot:
//
//	uint32 number of alarms A
//	A entries sorted by (alarm type, member id): uint64 member id, uint32 type
func (a *Applier) appendAlarms(b []byte) []byte {
	list := a.alarms.list()
	b = binary.BigEndian.AppendUint32(b, uint32(len(list)))
	for _, m := range list {
		b = binary.BigEndian.AppendUint64(b, m.GetMemberId())
		b = binary.BigEndian.AppendUint32(b, uint32(m.GetAlarm()))
	}
	return b
}

// decodeAlarms reads what appendAlarms wrote from the front of b and returns
// the table and the rest of b.
func decodeAlarms(b []byte) ([]*command.AlarmMember, []byte, error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated alarm table", ErrCorruptSnapshot)
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(len(b)) < uint64(n)*12 {
		return nil, nil, fmt.Errorf("%w: truncated alarm table", ErrCorruptSnapshot)
	}
	out := make([]*command.AlarmMember, 0, n)
	for range n {
		m := &command.AlarmMember{
			MemberId: binary.BigEndian.Uint64(b),
			Alarm:    command.AlarmRequest_AlarmType(binary.BigEndian.Uint32(b[8:])),
		}
		if len(out) > 0 && cmpAlarm(out[len(out)-1], m) >= 0 {
			return nil, nil, fmt.Errorf("%w: alarm table out of order", ErrCorruptSnapshot)
		}
		out = append(out, m)
		b = b[12:]
	}
	return out, b, nil
}

// restoreAlarms installs a decoded table; the caller holds Applier.mu.
func (a *Applier) restoreAlarms(list []*command.AlarmMember) {
	a.alarms.mu.Lock()
	defer a.alarms.mu.Unlock()
	a.alarms.setLocked(list)
}
