package apply

import (
	"fmt"

	"github.com/concord-db/concord/internal/command"
)

// Rebase turns a Snapshot blob taken from one cluster into the first state of
// a new cluster (what `snapshot restore` seeds a data dir with): the keyspace,
// its revision and compaction revision and the leases are kept; the member
// table becomes members, the alarm table is emptied (its entries named the
// old cluster's members) and the applied index becomes index, the raft index
// of the snapshot the new cluster starts from. It returns the new blob and
// the store revision it holds. A blob Restore rejects is rejected here too.
func Rebase(blob []byte, index uint64, members []*command.Member) ([]byte, int64, error) {
	a := New(nil)
	if err := a.Restore(blob); err != nil {
		return nil, 0, err
	}
	a.mu.Lock()
	a.membersMu.Lock()
	a.members = make(map[uint64]*command.Member, len(members))
	for _, m := range members {
		if _, dup := a.members[m.GetId()]; dup {
			a.membersMu.Unlock()
			a.mu.Unlock()
			return nil, 0, fmt.Errorf("apply: rebase: member id %x given twice", m.GetId())
		}
		a.members[m.GetId()] = cloneMember(m)
	}
	a.membersMu.Unlock()
	a.restoreAlarms(nil)
	a.applied.Store(index)
	a.mu.Unlock()
	out, err := a.Snapshot()
	if err != nil {
		return nil, 0, err
	}
	return out, a.store.Rev(), nil
}

func cloneMember(m *command.Member) *command.Member {
	return &command.Member{
		Id:         m.GetId(),
		Name:       m.GetName(),
		PeerUrls:   append([]string(nil), m.GetPeerUrls()...),
		ClientUrls: append([]string(nil), m.GetClientUrls()...),
		IsLearner:  m.GetIsLearner(),
	}
}
