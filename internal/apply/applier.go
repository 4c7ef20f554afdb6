package apply

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/lease"
	"github.com/concord-db/concord/internal/mvcc"
)

// Result is the outcome of one applied command.
type Result struct {
	// Resp is *command.PutResponse, *command.DeleteRangeResponse,
	// *command.TxnResponse, *command.CompactionResponse, or nil (for a
	// rejection or a command without a response). Its byte slices alias the
	// store and must not be mutated.
	Resp proto.Message
	// Rev is the store revision after applying: the response header revision.
	Rev int64
	// Err is a deterministic rejection (this package's sentinels or mvcc's):
	// an answer for the client, not a failure of the node.
	Err error
	// Events are the changes the command made, all at revision Rev, in the
	// order it made them (empty if it wrote nothing). Watchers are fed from
	// them; they alias the store and must not be mutated.
	Events []mvcc.Event
	// Leases lists what the command did to the lease table (lease.go).
	Leases []LeaseChange
	// TokensRevoked names a user whose password changed or who was deleted:
	// every member drops the user's simple tokens (auth.go).
	TokensRevoked string
}

// Applier is the replicated state machine. See the package doc for the
// determinism and concurrency contracts.
type Applier struct {
	logger *slog.Logger
	store  *mvcc.Store
	leases LeaseLookup
	// leaseTable is the replicated lease table; leases is it too, except
	// under tests that fake the lookup.
	leaseTable *lease.Table
	// alarms is the replicated alarm table (alarm.go).
	alarms alarmTable
	// auth is the replicated auth store (auth.go).
	auth *auth.Store

	applied atomic.Uint64

	// mu serializes everything that changes state or must see applied index,
	// members and store together (Apply, ApplyConfChange, Snapshot, Restore).
	mu sync.Mutex
	// members is guarded by mu for writers; readers take membersMu.
	membersMu sync.RWMutex
	members   map[uint64]*command.Member
}

// New returns an Applier owning an empty store at revision 1 and an empty
// member table. A nil logger discards.
func New(logger *slog.Logger) *Applier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	leases := lease.NewTable()
	return &Applier{
		logger:     logger,
		store:      mvcc.NewStore(),
		leases:     leases,
		leaseTable: leases,
		auth:       auth.NewStore(),
		members:    make(map[uint64]*command.Member),
	}
}

// Store returns the store the Applier owns. Callers may read it (Range, Hash,
// ...) but must never write to it: every write goes through Apply.
func (a *Applier) Store() *mvcc.Store { return a.store }

// AppliedIndex returns the index of the last applied entry. Safe from any
// goroutine.
func (a *Applier) AppliedIndex() uint64 { return a.applied.Load() }

// advanceLocked accepts index as the next entry: false means it was applied
// already and must be skipped.
func (a *Applier) advanceLocked(index uint64) (bool, error) {
	applied := a.applied.Load()
	if index <= applied {
		return false, nil
	}
	if index != applied+1 {
		return false, fmt.Errorf("%w: got %d, applied %d", ErrIndexGap, index, applied)
	}
	return true, nil
}

// Apply applies one committed normal entry. Entries at or below AppliedIndex
// (already applied, e.g. covered by a restored snapshot) are skipped and
// return a zero id and Result. Empty data (raft's no-op on leader election)
// only advances the applied index. A non-nil error means the entry could not
// be applied (undecodable, unknown version or op, index gap, broken
// invariant): the node must stop; the applied index is not advanced.
// Must be called from one goroutine in log order.
func (a *Applier) Apply(index uint64, data []byte) (id uint64, res Result, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ok, err := a.advanceLocked(index); !ok {
		return 0, Result{}, err
	}
	if len(data) == 0 {
		a.applied.Store(index)
		return 0, Result{Rev: a.store.Rev()}, nil
	}
	var cmd command.Command
	if err := command.Unmarshal(data, &cmd); err != nil {
		return 0, Result{}, fmt.Errorf("apply: entry %d: decode command: %w", index, err)
	}
	if v := cmd.GetVersion(); v != command.Version {
		return 0, Result{}, fmt.Errorf("%w %d (entry %d, this build applies %d)", ErrUnknownVersion, v, index, command.Version)
	}
	// Under an alarm some commands are refused before anything else
	// (alarm.go): deterministic, since the alarms are replicated state.
	if rej := a.Admit(&cmd); rej != nil {
		a.applied.Store(index)
		return cmd.GetId(), Result{Rev: a.store.Rev(), Err: rej}, nil
	}
	if rej := a.Authorize(&cmd); rej != nil {
		a.applied.Store(index)
		return cmd.GetId(), Result{Rev: a.store.Rev(), Err: rej}, nil
	}
	switch op := cmd.GetOp().(type) {
	case *command.Command_Put:
		res = a.applyPut(op.Put)
	case *command.Command_DeleteRange:
		res = a.applyDeleteRange(op.DeleteRange)
	case *command.Command_Txn:
		res, err = a.applyTxn(op.Txn)
	case *command.Command_Compaction:
		res = a.applyCompaction(op.Compaction)
	case *command.Command_PublishMember:
		res = a.applyPublishMember(op.PublishMember)
	case *command.Command_Alarm:
		res = a.applyAlarm(op.Alarm)
	case *command.Command_LeaseGrant:
		res = a.applyLeaseGrant(op.LeaseGrant)
	case *command.Command_LeaseRevoke:
		res = a.applyLeaseRevoke(op.LeaseRevoke)
	case *command.Command_LeaseCheckpoint:
		res = a.applyLeaseCheckpoint(op.LeaseCheckpoint)
	default:
		if isAuthOp(&cmd) {
			res = a.applyAuth(&cmd)
			break
		}
		err = fmt.Errorf("%w (entry %d)", ErrUnknownOp, index)
	}
	if err != nil {
		return 0, Result{}, err
	}
	a.trackLeaseKeys(res.Events)
	a.applied.Store(index)
	return cmd.GetId(), res, nil
}

func (a *Applier) applyPut(p *command.PutRequest) Result {
	// etcd checks the named lease before anything else.
	if l := p.GetLease(); l != 0 && !a.leases.Exists(l) {
		return Result{Rev: a.store.Rev(), Err: ErrLeaseNotFound}
	}
	w := a.store.Write()
	if err := a.checkPut(w, p); err != nil {
		w.End()
		return Result{Rev: a.store.Rev(), Err: err}
	}
	resp, err := execPut(w, p)
	events := w.End()
	if err != nil { // unreachable: checkPut saw the same state
		return Result{Rev: a.store.Rev(), Err: err}
	}
	return Result{Resp: resp, Rev: a.store.Rev(), Events: events}
}

func (a *Applier) applyDeleteRange(d *command.DeleteRangeRequest) Result {
	w := a.store.Write()
	resp := execDeleteRange(w, d)
	events := w.End()
	return Result{Resp: resp, Rev: a.store.Rev(), Events: events}
}

// applyTxn runs a txn as one write transaction: compares and checks first
// against the untouched state, then the ops, all at one revision (none if
// nothing was written). The error return is for invariant failures only.
func (a *Applier) applyTxn(t *command.TxnRequest) (Result, error) {
	// Checked here as well as in ValidateTxn: it is what guarantees no op
	// fails after an earlier one wrote (there is no undo).
	if err := checkDuplicates(t); err != nil {
		return Result{Rev: a.store.Rev(), Err: err}, nil
	}
	w := a.store.Write()
	path := compareToPath(w, t)
	if _, err := a.checkTxn(w, t, path); err != nil {
		w.End()
		return Result{Rev: a.store.Rev(), Err: err}, nil
	}
	resp, _, err := execTxn(w, w, t, path)
	events := w.End()
	if err != nil {
		return Result{}, fmt.Errorf("apply: txn failed after its checks passed: %w", err)
	}
	return Result{Resp: resp, Rev: a.store.Rev(), Events: events}, nil
}

func (a *Applier) applyCompaction(c *command.CompactionRequest) Result {
	if err := a.store.Compact(c.GetRevision()); err != nil {
		return Result{Rev: a.store.Rev(), Err: err}
	}
	return Result{Resp: &command.CompactionResponse{}, Rev: a.store.Rev()}
}

// applyPublishMember records a started member's attributes. Publishing for a
// member not in the table (removed meanwhile) is ignored, as in etcd.
func (a *Applier) applyPublishMember(p *command.PublishMember) Result {
	a.membersMu.Lock()
	defer a.membersMu.Unlock()
	m, ok := a.members[p.GetMemberId()]
	if !ok {
		a.logger.Info("ignored publish for unknown member", "member", fmt.Sprintf("%x", p.GetMemberId()))
		return Result{Rev: a.store.Rev()}
	}
	m = proto.CloneOf(m)
	m.Name = p.GetName()
	m.ClientUrls = slices.Clone(p.GetClientUrls())
	if len(p.GetPeerUrls()) > 0 {
		m.PeerUrls = slices.Clone(p.GetPeerUrls())
	}
	a.members[m.GetId()] = m
	return Result{Rev: a.store.Rev()}
}

// ApplyConfChange applies a committed conf change to the member table:
// AddNode and AddLearnerNode add or replace the member described by
// cc.Context (a marshalled command.Member; its id is cc.NodeId's, and an empty
// context on a known member is a promotion), RemoveNode deletes it and
// UpdateNode replaces its peer URLs. It takes a pointer because raftpb
// messages must not be copied. An error (undecodable context, index gap)
// means the node must stop.
func (a *Applier) ApplyConfChange(index uint64, cc *raftpb.ConfChange) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ok, err := a.advanceLocked(index); !ok {
		return err
	}
	var ctx command.Member
	if err := proto.Unmarshal(cc.GetContext(), &ctx); err != nil {
		return fmt.Errorf("apply: conf change entry %d: decode member: %w", index, err)
	}
	id := cc.GetNodeId()
	a.membersMu.Lock()
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		learner := cc.GetType() == raftpb.ConfChangeType_ConfChangeAddLearnerNode
		m, known := a.members[id]
		if len(cc.GetContext()) == 0 && known {
			m = proto.CloneOf(m)
		} else {
			m = proto.CloneOf(&ctx)
		}
		m.Id, m.IsLearner = id, learner
		a.members[id] = m
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		delete(a.members, id)
	case raftpb.ConfChangeType_ConfChangeUpdateNode:
		if m, ok := a.members[id]; ok {
			m = proto.CloneOf(m)
			m.PeerUrls = slices.Clone(ctx.GetPeerUrls())
			a.members[id] = m
		}
	}
	a.membersMu.Unlock()
	a.applied.Store(index)
	return nil
}

// Members returns copies of the member table's rows, sorted by id. Safe from
// any goroutine.
func (a *Applier) Members() []*command.Member {
	a.membersMu.RLock()
	defer a.membersMu.RUnlock()
	return a.membersLocked()
}

// ClientURLs returns a copy of member id's client URLs, nil if id is not a
// member. Safe from any goroutine; unlike Members it copies one row's URLs,
// not every row (a follower looks its leader up on every call it forwards).
func (a *Applier) ClientURLs(id uint64) []string {
	a.membersMu.RLock()
	defer a.membersMu.RUnlock()
	return slices.Clone(a.members[id].GetClientUrls())
}

func (a *Applier) membersLocked() []*command.Member {
	out := make([]*command.Member, 0, len(a.members))
	for _, m := range a.members {
		out = append(out, proto.CloneOf(m))
	}
	slices.SortFunc(out, func(x, y *command.Member) int {
		switch {
		case x.GetId() < y.GetId():
			return -1
		case x.GetId() > y.GetId():
			return 1
		}
		return 0
	})
	return out
}

// Range serves a local (serializable) range at the store's current state;
// the caller decides whether a ReadIndex must come first. It validates r and
// returns the response with the store revision. Safe from any goroutine.
func (a *Applier) Range(r *command.RangeRequest) (*command.RangeResponse, int64, error) {
	if err := ValidateRange(r); err != nil {
		return nil, 0, err
	}
	v := a.store.Read()
	defer v.End()
	resp, err := execRange(v, r)
	return resp, v.Rev(), err
}

// ReadTxn serves a read-only txn locally on one consistent view (check
// IsReadOnlyTxn first). A chosen branch containing a write yields
// ErrNotReadOnly. Safe from any goroutine.
func (a *Applier) ReadTxn(r *command.TxnRequest) (*command.TxnResponse, int64, error) {
	v := a.store.Read()
	defer v.End()
	path := compareToPath(v, r)
	if writes, _ := pathWrites(r, path); writes {
		return nil, 0, ErrNotReadOnly
	}
	if _, err := a.checkTxn(v, r, path); err != nil {
		return nil, 0, err
	}
	resp, _, err := execTxn(v, nil, r, path)
	if err != nil {
		return nil, 0, err
	}
	return resp, v.Rev(), nil
}

// Hash returns the store's hash at rev (0 = current) and its compaction
// revision, for comparing members.
func (a *Applier) Hash(rev int64) (uint32, int64, error) { return a.store.Hash(rev) }

// Snapshot format, version 2 (fixed-width integers big-endian):
//
//	offset 0   8 bytes  magic "CNCDAPLY"
//	offset 8   uint32   format version (2)
//	offset 12  uint64   applied index
//	offset 20  uint32   number of members M
//	then M members ascending by id, each: uint32 length + deterministic
//	protobuf encoding of command.Member
//	then the lease table (lease.Table.AppendBinary; format in package
//	lease's doc)
//	then (version 3) the alarm table (alarm.go, appendAlarms)
//	then (version 4) the auth store (auth.Store.AppendBinary; format in
//	package auth's doc)
//	then the mvcc store serialization (mvcc.Store.WriteTo, self-checked)
//	trailer    uint32   CRC-32C (Castagnoli) of every preceding byte
//
// Version 1 is the same without the lease table (written before leases
// existed); Restore reads it as an empty table. Version 2 has no alarm
// table; Restore reads it as no alarms. Version 3 has no auth store;
// Restore reads it as auth disabled with no users. Snapshot writes version 4.
const (
	snapMagic     = "CNCDAPLY"
	snapVersion   = 4
	snapVersionV1 = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot serializes the applied index, member table and store into one
// blob. Equal states give equal bytes. It is SnapshotView followed at once
// by the serialization.
func (a *Applier) Snapshot() ([]byte, error) {
	write, err := a.SnapshotView()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SnapshotView captures the state as of the last applied entry and returns
// the function that serializes it into w (the bytes Snapshot would return at
// this moment), streaming: the store is never copied whole into memory. The capture is cheap: the small tables are encoded now, under the
// apply lock, and the store is a copy-on-write clone (mvcc.Store.Clone), so
// the returned function may run on another goroutine while Apply goes on; it
// must be called at most once.
func (a *Applier) SnapshotView() (func(w io.Writer) error, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b []byte
	b = append(b, snapMagic...)
	b = binary.BigEndian.AppendUint32(b, snapVersion)
	b = binary.BigEndian.AppendUint64(b, a.applied.Load())
	a.membersMu.RLock()
	members := a.membersLocked()
	a.membersMu.RUnlock()
	b = binary.BigEndian.AppendUint32(b, uint32(len(members)))
	opts := proto.MarshalOptions{Deterministic: true}
	for _, m := range members {
		mb, err := opts.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("apply: snapshot: marshal member: %w", err)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(mb)))
		b = append(b, mb...)
	}
	b, err := a.leaseTable.AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("apply: snapshot: lease table: %w", err)
	}
	b = a.appendAlarms(b)
	if b, err = a.auth.AppendBinary(b); err != nil {
		return nil, fmt.Errorf("apply: snapshot: auth store: %w", err)
	}
	store := a.store.Clone()
	return func(w io.Writer) error {
		h := crc32.New(castagnoli)
		mw := io.MultiWriter(w, h)
		if _, err := mw.Write(b); err != nil {
			return fmt.Errorf("apply: snapshot: %w", err)
		}
		if _, err := store.WriteTo(mw); err != nil {
			return fmt.Errorf("apply: snapshot: %w", err)
		}
		if _, err := w.Write(binary.BigEndian.AppendUint32(nil, h.Sum32())); err != nil {
			return fmt.Errorf("apply: snapshot: %w", err)
		}
		return nil
	}, nil
}

// Restore replaces the whole state with a Snapshot blob. The blob is verified
// before anything changes; on error the state is unchanged.
func (a *Applier) Restore(data []byte) error {
	if len(data) < 24+4 {
		return fmt.Errorf("%w: %d bytes", ErrCorruptSnapshot, len(data))
	}
	body, trailer := data[:len(data)-4], data[len(data)-4:]
	if got, want := binary.BigEndian.Uint32(trailer), crc32.Checksum(body, castagnoli); got != want {
		return fmt.Errorf("%w: checksum mismatch", ErrCorruptSnapshot)
	}
	if string(body[:8]) != snapMagic {
		return fmt.Errorf("%w: bad magic", ErrCorruptSnapshot)
	}
	version := binary.BigEndian.Uint32(body[8:12])
	if version < snapVersionV1 || version > snapVersion {
		return fmt.Errorf("apply: unsupported snapshot format version %d", version)
	}
	applied := binary.BigEndian.Uint64(body[12:20])
	n := binary.BigEndian.Uint32(body[20:24])
	rest := body[24:]
	members := make(map[uint64]*command.Member)
	for i := uint32(0); i < n; i++ {
		if len(rest) < 4 {
			return fmt.Errorf("%w: truncated member table", ErrCorruptSnapshot)
		}
		l := binary.BigEndian.Uint32(rest)
		if uint64(len(rest)-4) < uint64(l) {
			return fmt.Errorf("%w: truncated member", ErrCorruptSnapshot)
		}
		m := &command.Member{}
		if err := proto.Unmarshal(rest[4:4+l], m); err != nil {
			return fmt.Errorf("%w: member: %w", ErrCorruptSnapshot, err)
		}
		members[m.GetId()] = m
		rest = rest[4+l:]
	}
	leases := lease.NewTable()
	if version >= 2 {
		var err error
		if leases, rest, err = lease.DecodeTable(rest); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
	}
	var alarms []*command.AlarmMember
	if version >= 3 {
		var err error
		if alarms, rest, err = decodeAlarms(rest); err != nil {
			return err
		}
	}
	authStore := auth.NewStore()
	if version >= 4 {
		var err error
		if authStore, rest, err = auth.DecodeStore(rest); err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Store.Restore verifies everything before swapping, so a failure here
	// leaves all state untouched.
	if err := a.store.Restore(bytes.NewReader(rest)); err != nil {
		if errors.Is(err, mvcc.ErrCorruptSnapshot) {
			return fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
		return fmt.Errorf("apply: restore: %w", err)
	}
	a.membersMu.Lock()
	a.members = members
	a.membersMu.Unlock()
	a.leaseTable.Replace(leases)
	a.restoreAlarms(alarms)
	a.auth.Replace(authStore)
	a.applied.Store(applied)
	return nil
}
