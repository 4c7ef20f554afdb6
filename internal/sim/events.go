package sim

import (
	"go.etcd.io/raft/v3/raftpb"

	"github.com/concord-db/concord/internal/raftnode"
)

// evKind says what an event does when its time comes.
type evKind uint8

const (
	evTick      evKind = iota + 1 // a member's raft clock ticks
	evDeliver                     // a message arrives at its destination
	evReport                      // the transport tells a sender how a send went
	evClient                      // a client issues its next operation
	evTimeout                     // a client gives up on its operation
	evFault                       // a nemesis fault starts
	evUndo                        // a nemesis fault ends
	evWriteback                   // the "kernel" flushes a no-fsync member's files
	evWatch                       // a watch client (re)connects
	evPromote                     // try to promote a new learner
	evSlowReady                   // a slow disk finished a member's fsync
	evSnapshot                    // a member's background snapshot finishes
)

// event is one entry of the simulation's agenda. Events run in (at, seq)
// order; seq is the order of scheduling, so ties are broken the same way in
// every replay.
type event struct {
	at   int64
	seq  uint64
	kind evKind

	member int // evTick, evDeliver (destination), evReport (sender), evWriteback
	inc    int // the member's incarnation the event belongs to (evTick, evReport)

	from    int // evDeliver: sender
	fromInc int // evDeliver: sender's incarnation when it sent
	msg     *raftpb.Message

	peer   int  // evReport: the destination the report is about
	snap   bool // evReport: a MsgSnap outcome (else: unreachable)
	failed bool // evReport: the MsgSnap was lost
	// refused (evReport, not snap): the peer's process is down, so its
	// address refuses connections, as a crashed member's does.
	refused bool

	client int    // evClient, evTimeout; evWatch: the watcher
	op     uint64 // evTimeout: the operation it times out

	fault *fault // evFault, evUndo

	job *raftnode.SnapshotJob // evSnapshot
}

// agenda is a binary min-heap of events by (at, seq).
type agenda struct {
	evs []*event
	seq uint64
}

func (a *agenda) less(i, j int) bool {
	x, y := a.evs[i], a.evs[j]
	if x.at != y.at {
		return x.at < y.at
	}
	return x.seq < y.seq
}

func (a *agenda) push(e *event) {
	a.seq++
	e.seq = a.seq
	a.evs = append(a.evs, e)
	i := len(a.evs) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a.evs[i], a.evs[p] = a.evs[p], a.evs[i]
		i = p
	}
}

func (a *agenda) pop() *event {
	n := len(a.evs) - 1
	top := a.evs[0]
	a.evs[0] = a.evs[n]
	a.evs[n] = nil
	a.evs = a.evs[:n]
	i := 0
	for {
		l, r := 2*i+1, 2*i+2
		m := i
		if l < n && a.less(l, m) {
			m = l
		}
		if r < n && a.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		a.evs[i], a.evs[m] = a.evs[m], a.evs[i]
		i = m
	}
	return top
}

func (a *agenda) len() int { return len(a.evs) }
