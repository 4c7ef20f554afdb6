package raftnode

import (
	"errors"
	"testing"
)

// TestCoreLogReadBack: with storage that reads entries back, members keep
// only MemoryLogEntries applied entries in memory, and a member that fell
// further behind is caught up with entries read from storage, not with a
// snapshot.
func TestCoreLogReadBack(t *testing.T) {
	c := newClusterOf(t, 3, Config{SnapshotCount: 1 << 20, MemoryLogEntries: 4}, true)
	lead := c.waitLeader()
	lagger := c.follower(lead)
	c.isolate(lagger)
	for i := range 6 {
		c.proposeN(lead, i*10, 10)
	}
	st := c.cores[lead].store
	applied := c.cores[lead].Applied()
	if mf := st.memFirst(); mf+4+4 < applied {
		t.Fatalf("leader keeps entries from %d in memory at applied %d; want at most 4+4/4 behind", mf, applied)
	}
	if first, _ := st.FirstIndex(); first != 1 {
		t.Fatalf("first index %d: the log is not compacted without a snapshot", first)
	}

	c.heal()
	c.waitConverged()
	c.assertSameState()
	if got := c.sms[lagger].restoreCount(); got != 0 {
		t.Fatalf("lagging member restored %d snapshots; want it caught up from the log", got)
	}
	if c.stores[lead].reads == 0 {
		t.Fatal("the leader read no entries back from storage")
	}
	if n, failed := c.cores[lead].LogReads(); n == 0 || failed != 0 {
		t.Fatalf("LogReads = %d entries, %d failures; want some entries, no failures", n, failed)
	}

	// A restarted member boots with its whole log and trims it as it
	// applies.
	c.crash(lagger)
	c.restart(lagger)
	c.proposeN(lead, 100, 5)
	c.waitConverged()
	c.assertSameState()
	if mf, applied := c.cores[lagger].store.memFirst(), c.cores[lagger].Applied(); mf+4+4 < applied {
		t.Fatalf("restarted member keeps entries from %d in memory at applied %d", mf, applied)
	}
}

// TestCoreLogReadBackFails: entries that cannot be read back make the
// leader take a snapshot and send it; the leader keeps running.
func TestCoreLogReadBackFails(t *testing.T) {
	c := newClusterOf(t, 3, Config{SnapshotCount: 1 << 20, MemoryLogEntries: 4}, true)
	lead := c.waitLeader()
	lagger := c.follower(lead)
	c.isolate(lagger)
	c.proposeN(lead, 0, 30)
	c.stores[lead].failReads = errors.New("disk on fire")

	c.heal()
	c.waitConverged()
	c.assertSameState()
	if got := c.sms[lagger].restoreCount(); got != 1 {
		t.Fatalf("lagger restored %d snapshots, want 1", got)
	}
	if c.stores[lead].reads == 0 {
		t.Fatal("the leader did not try to read entries back")
	}
	if _, failed := c.cores[lead].LogReads(); failed == 0 {
		t.Fatal("LogReads counted no failure")
	}
	if err := c.cores[lead].Err(); err != nil {
		t.Fatalf("leader stopped: %v", err)
	}
	c.proposeN(lead, 30, 5)
	c.waitConverged()
	c.assertSameState()
}
