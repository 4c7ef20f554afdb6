package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/check"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/raftnode"
)

// leaseOpPercent is the share of client operations on leases.
const leaseOpPercent = 20

// Client think time between operations.
const (
	thinkMin = int64(1e6)  // 1ms
	thinkMax = int64(40e6) // 40ms
)

// Operation mix, in weights.
var opWeights = []struct {
	kind         check.Kind
	serializable bool
	weight       int
}{
	{check.Put, false, 30},
	{check.Get, false, 25},
	{check.Get, true, 10},
	{check.CAS, false, 25},
	{check.Delete, false, 10},
}

// client issues one operation at a time to a random member.
type client struct {
	id   int
	cur  *opState
	seq  int
	seen map[string]valueSeen // the last value it saw per key, for CAS
	// lease: the lease it holds and believes alive, if any.
	lease *clientLease
}

type valueSeen struct {
	exists bool
	value  string
}

// opState is one client operation in flight.
type opState struct {
	seq    uint64 // global, 1-based
	hid    int    // check.Recorder handle
	client int
	in     check.Op
	member int
	done   bool

	cmdID uint64   // writes: the command id its member waits for
	lease leaseReq // lease operations; hid is -1 for a grant (not a KV op)

	rctx     uint64 // linearizable reads: the current ReadIndex round
	issued   int64  // when that round started
	index    uint64 // the read index, once known
	hasIndex bool
}

func sortOps(ops []*opState) {
	slices.SortFunc(ops, func(a, b *opState) int { return int(a.seq) - int(b.seq) })
}

func (s *simulation) keyName(i int) string { return fmt.Sprintf("k%d", i) }

func (s *simulation) startClients() {
	for i := range s.cfg.Clients {
		c := &client{id: i, seen: map[string]valueSeen{}}
		s.clients = append(s.clients, c)
		s.at(s.now+thinkMin+s.workRng.Int64N(thinkMax), &event{kind: evClient, client: i})
	}
}

// onClient issues the client's next operation during the run phase.
func (s *simulation) onClient(ev *event) {
	c := s.clients[ev.client]
	if s.phase != phaseRun || (c.cur != nil && !c.cur.done) {
		return
	}
	total := 0
	for _, w := range opWeights {
		total += w.weight
	}
	pick := s.workRng.IntN(total)
	var in check.Op
	for _, w := range opWeights {
		if pick < w.weight {
			in = check.Op{Kind: w.kind, Serializable: w.serializable}
			break
		}
		pick -= w.weight
	}
	if s.workRng.IntN(100) < leaseOpPercent {
		in, lr := s.pickLeaseOp(c)
		in.Client = c.id
		s.invoke(c, in, lr, s.workRng.IntN(len(s.members)))
		return
	}
	in.Client = c.id
	in.Key = s.keyName(s.workRng.IntN(s.cfg.Keys))
	if in.Kind == check.Put || in.Kind == check.CAS {
		c.seq++
		in.Value = fmt.Sprintf("c%d.%d", c.id, c.seq)
	}
	if in.Kind == check.CAS {
		seen := c.seen[in.Key]
		in.ExpectAbsent, in.Expect = !seen.exists, seen.value
	}
	s.invoke(c, in, leaseReq{}, s.workRng.IntN(len(s.members)))
}

// invoke records the call and hands the request to member mi.
func (s *simulation) invoke(c *client, in check.Op, lr leaseReq, mi int) *opState {
	m := s.members[mi]
	in.Member = m.name
	op := &opState{seq: uint64(len(s.ops) + 1), client: c.id, in: in, member: mi, lease: lr, hid: -1}
	what := in.Input()
	if lr.kind == leaseGrant {
		what = fmt.Sprintf("grant(lease %d, %ds)", lr.id, lr.ttl)
		s.leases[lr.id] = &leaseInfo{call: s.now, ttl: lr.ttl}
	} else {
		op.hid = s.rec.Call(in, s.now)
	}
	switch {
	case lr.kind == leaseRevoke:
		what = fmt.Sprintf("revoke(lease %d) = %s", lr.id, what)
	case lr.attch:
		what = fmt.Sprintf("%s with lease %d", what, lr.id)
	}
	s.ops = append(s.ops, op)
	c.cur = op
	s.tracef("c%d call %s on %s (op %d)", c.id, what, m.name, op.seq)
	s.at(s.now+clientTimeout, &event{kind: evTimeout, client: c.id, op: op.seq})
	switch {
	case !m.up:
		s.failOp(op, true, m.name+" is down (connection refused)")
	case m.paused:
		m.held = append(m.held, op)
	default:
		s.serve(m, op)
	}
	return op
}

// serve runs a request on a live member, as the server's request path does.
func (s *simulation) serve(m *member, op *opState) {
	switch in := &op.in; {
	case in.Kind == check.Get && (in.Serializable || s.cfg.UnsafeLocalReads):
		s.readLocal(m, op)
	case in.Kind == check.Get:
		s.nextRctx++
		op.rctx, op.issued, op.hasIndex = s.nextRctx, s.now, false
		m.reads = append(m.reads, op)
		if s.guard(m, "ReadIndex", func() { m.core.ReadIndex(rctxBytes(op.rctx)) }) {
			s.drive(m)
		}
	default:
		s.propose(m, op)
	}
}

func rctxBytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// propose turns a write into a command and proposes it.
func (s *simulation) propose(m *member, op *opState) {
	s.nextCmd++
	cmd := leaseCommand(op, s.nextCmd, s.now)
	if cmd == nil {
		cmd = &command.Command{Version: command.Version, Id: s.nextCmd, Stamp: s.now}
	}
	key := []byte(op.in.Key)
	switch {
	case cmd.Op != nil:
	case op.in.Kind == check.Put:
		cmd.Op = &command.Command_Put{Put: &command.PutRequest{Key: key, Value: []byte(op.in.Value), Lease: op.lease.id}}
	case op.in.Kind == check.Delete:
		cmd.Op = &command.Command_DeleteRange{DeleteRange: &command.DeleteRangeRequest{Key: key}}
	case op.in.Kind == check.CAS:
		cmp := &command.Compare{Key: key, Result: command.Compare_EQUAL}
		if op.in.ExpectAbsent {
			cmp.Target = command.Compare_CREATE
			cmp.TargetUnion = &command.Compare_CreateRevision{CreateRevision: 0}
		} else {
			cmp.Target = command.Compare_VALUE
			cmp.TargetUnion = &command.Compare_Value{Value: []byte(op.in.Expect)}
		}
		put := &command.RequestOp{Request: &command.RequestOp_RequestPut{RequestPut: &command.PutRequest{Key: key, Value: []byte(op.in.Value)}}}
		cmd.Op = &command.Command_Txn{Txn: &command.TxnRequest{Compare: []*command.Compare{cmp}, Success: []*command.RequestOp{put}}}
	}
	data, err := command.Marshal(cmd)
	if err != nil {
		s.failOp(op, true, "marshal: "+err.Error())
		return
	}
	op.cmdID = cmd.Id
	m.waiters[cmd.Id] = op
	w := queuedWrite{op: op, data: data}
	if m.batching {
		m.batch = append(m.batch, w)
		return
	}
	s.proposeWrites(m, []queuedWrite{w})
}

// queuedWrite is a write's operation and its encoded command.
type queuedWrite struct {
	op   *opState
	data []byte
}

// proposeWrites proposes the commands of ws, in order, as one raft
// proposal: all taken or all dropped.
func (s *simulation) proposeWrites(m *member, ws []queuedWrite) {
	data := make([][]byte, len(ws))
	for i, w := range ws {
		data[i] = w.data
	}
	var err error
	if !s.guard(m, "Propose", func() { err = m.core.Propose(data...) }) {
		return
	}
	if errors.Is(err, raftnode.ErrProposalDropped) {
		for _, w := range ws {
			delete(m.waiters, w.op.cmdID)
			s.failOp(w.op, true, "proposal dropped (no leader)")
		}
		return
	}
	s.drive(m)
}

// proposalApplied answers the client waiting on this member for command id.
func (s *simulation) proposalApplied(m *member, id uint64, res apply.Result) {
	op, ok := m.waiters[id]
	if !ok {
		return
	}
	delete(m.waiters, id)
	if res.Err != nil {
		// A deterministic rejection: applied, but it changed nothing.
		s.failOp(op, true, "rejected: "+res.Err.Error())
		return
	}
	out := check.Op{Rev: res.Rev, Member: m.name}
	switch r := res.Resp.(type) {
	case *command.TxnResponse:
		out.Succeeded = r.GetSucceeded()
	case *command.DeleteRangeResponse:
		out.Deleted = r.GetDeleted()
	case *command.LeaseRevokeResponse:
		out.Deleted = int64(len(res.Events))
	case *command.LeaseGrantResponse:
		c := s.clients[op.client]
		c.lease = &clientLease{id: r.GetId(), ttl: r.GetTtl(), call: s.leases[op.lease.id].call}
	}
	s.complete(op, out)
}

// readLocal answers a read from the member's applied state.
func (s *simulation) readLocal(m *member, op *opState) {
	resp, rev, err := m.app.Range(&command.RangeRequest{Key: []byte(op.in.Key)})
	if err != nil {
		s.failOp(op, true, "range: "+err.Error())
		return
	}
	out := check.Op{Rev: rev, Member: m.name}
	if kvs := resp.GetKvs(); len(kvs) > 0 {
		out.Found, out.Got = true, string(kvs[0].GetValue())
	}
	s.complete(op, out)
}

// readState matches a ReadIndex answer to the read waiting for it.
func (s *simulation) readState(m *member, rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	rctx := binary.BigEndian.Uint64(rs.RequestCtx)
	s.leaseReadState(m, rctx, rs.Index)
	for _, op := range m.reads {
		if op.rctx == rctx && !op.hasIndex {
			op.index, op.hasIndex = rs.Index, true
		}
	}
}

// serveReads answers the reads whose read index the member has applied.
func (s *simulation) serveReads(m *member) {
	if len(m.reads) == 0 {
		return
	}
	applied := m.core.Applied()
	keep := m.reads[:0]
	var ready []*opState
	for _, op := range m.reads {
		switch {
		case op.done:
		case op.hasIndex && op.index <= applied:
			ready = append(ready, op)
		default:
			keep = append(keep, op)
		}
	}
	clear(m.reads[len(keep):])
	m.reads = keep
	for _, op := range ready {
		s.readLocal(m, op)
	}
}

// retryReads re-issues ReadIndex rounds unanswered for an election timeout:
// raft drops a round when there is no leader or leadership changes.
func (s *simulation) retryReads(m *member) {
	for _, op := range m.reads {
		if op.done || op.hasIndex || s.now-op.issued < electionTicks*tickInterval {
			continue
		}
		s.nextRctx++
		op.rctx, op.issued = s.nextRctx, s.now
		if !s.guard(m, "ReadIndex", func() { m.core.ReadIndex(rctxBytes(op.rctx)) }) {
			return
		}
	}
}

// complete records a successful answer.
func (s *simulation) complete(op *opState, out check.Op) {
	if op.done {
		return
	}
	op.done = true
	c := s.clients[op.client]
	if op.hid < 0 {
		s.tracef("c%d ret  grant(lease %d) ok on %s (op %d)", op.client, op.lease.id, out.Member, op.seq)
		s.next(c)
		return
	}
	s.rec.Return(op.hid, out, s.now)
	res := op.in
	res.Status, res.Found, res.Got, res.Succeeded, res.Deleted, res.Rev = check.OK, out.Found, out.Got, out.Succeeded, out.Deleted, out.Rev
	s.tracef("c%d ret  %s on %s (op %d)", op.client, res.String(), out.Member, op.seq)
	switch {
	case op.in.Kind == check.Get:
		c.seen[op.in.Key] = valueSeen{out.Found, out.Got}
	case op.in.Kind == check.Put || (op.in.Kind == check.CAS && out.Succeeded):
		c.seen[op.in.Key] = valueSeen{true, op.in.Value}
	case op.in.Kind == check.Delete:
		c.seen[op.in.Key] = valueSeen{}
	}
	s.next(c)
}

// failOp settles an operation without an answer.
func (s *simulation) failOp(op *opState, definite bool, why string) {
	if op.done {
		return
	}
	op.done = true
	if op.hid >= 0 {
		s.rec.Fail(op.hid, definite, s.now)
	}
	what := "indefinite"
	if definite {
		what = "failed"
	}
	s.tracef("c%d %s op %d: %s", op.client, what, op.seq, why)
	s.next(s.clients[op.client])
}

func (s *simulation) next(c *client) {
	s.at(s.now+thinkMin+s.workRng.Int64N(thinkMax-thinkMin), &event{kind: evClient, client: c.id})
}

// onTimeout gives up on an operation the client still waits for.
func (s *simulation) onTimeout(ev *event) {
	op := s.ops[ev.op-1]
	if op.done {
		return
	}
	m := s.members[op.member]
	if m.waiters != nil && op.cmdID != 0 {
		delete(m.waiters, op.cmdID)
	}
	if i := slices.Index(m.held, op); i >= 0 {
		m.held = slices.Delete(m.held, i, i+1)
	}
	s.failOp(op, false, "timed out")
}

// finalReads reads every key linearizably through the leader once the
// cluster has converged, so the history ends with the settled state.
func (s *simulation) finalReads() {
	c := &client{id: len(s.clients), seen: map[string]valueSeen{}}
	s.clients = append(s.clients, c)
	for k := range s.cfg.Keys {
		key := s.keyName(k)
		deadline := s.now + finalReadLimit
		for {
			l := s.leader()
			if l == nil {
				if !s.loop(s.now+tickInterval, func() bool { return s.leader() != nil }) && s.now >= deadline {
					s.violate(KindLiveness, "no leader for the final read of %q", key)
					return
				}
				continue
			}
			op := s.invoke(c, check.Op{Client: c.id, Kind: check.Get, Key: key}, leaseReq{}, l.idx)
			s.loop(deadline, func() bool { return op.done })
			if s.rec.Ops()[op.hid].Status == check.OK {
				break
			}
			if s.now >= deadline {
				s.violate(KindLiveness, "final read of %q did not complete within %s", key, fmtDur(finalReadLimit))
				return
			}
		}
	}
}
