package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// walRecord is one record header of a WAL segment, as documented in
// internal/wal/doc.go: crc(4) length(4) type(1) flags(1) reserved(2)
// batch(4), then the payload padded to a multiple of 8.
type walRecord struct {
	offset int64
	length uint32
	typ    byte
	batch  uint32
}

// walRecords walks the records of a segment from its start until the first
// header that cannot be a record (type 0: the zeroed, preallocated rest).
func walRecords(data []byte) []walRecord {
	var recs []walRecord
	off := 0
	for off+16 <= len(data) {
		typ := data[off+8]
		if typ < 1 || typ > 4 {
			break
		}
		n := binary.LittleEndian.Uint32(data[off+4:])
		recs = append(recs, walRecord{
			offset: int64(off),
			length: n,
			typ:    typ,
			batch:  binary.LittleEndian.Uint32(data[off+12:]),
		})
		off += 16 + int(n) + (8-int(n)%8)%8
	}
	return recs
}

// TestCorruptWALStopsMember damages an acknowledged record in the middle of
// a WAL segment and checks that the member refuses to start, naming the file
// and the offset, rather than skipping the record or serving.
func TestCorruptWALStopsMember(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Size: 1})
	c.WaitLeader(10 * c.Opts.ElectionTimeout)
	for i := range 60 {
		if _, err := c.Client(0).Put(reqCtx(t), fmt.Sprintf("c/%03d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if code := c.Stop(0); code != 0 {
		t.Fatalf("SIGTERM: %s exited %d, want 0", c.Members[0].Name, code)
	}

	segs, err := filepath.Glob(filepath.Join(c.Members[0].DataDir, "member", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no WAL segments in %s (err %v)", c.Members[0].DataDir, err)
	}
	slices.Sort(segs) // names start with the zero-padded sequence number
	seg := segs[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	recs := walRecords(data)
	if len(recs) < 10 {
		t.Fatalf("%s: only %d records decoded from the documented framing; expected at least 60 entries", seg, len(recs))
	}
	end := recs[len(recs)-1].offset
	// The first entry record at or after a third of the written data that
	// is followed by a record of a later batch: damage there cannot be a
	// torn tail, since a later write was synced after it.
	var victim *walRecord
	for i := range recs {
		r := &recs[i]
		if r.typ != 2 || r.offset < end/3 {
			continue
		}
		if slices.ContainsFunc(recs[i+1:], func(o walRecord) bool { return o.batch > r.batch }) {
			victim = r
			break
		}
	}
	if victim == nil {
		t.Fatalf("%s: no entry record after offset %d followed by a later batch (%d records)", seg, end/3, len(recs))
	}
	// Flip bytes of the entry's index field: the CRC no longer matches.
	at := victim.offset + 16 + 8
	for i := range int64(4) {
		data[at+i] ^= 0xff
	}
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped 4 bytes at %d in the record at offset %d (batch %d) of %s (%d records, data ends near %d)", at, victim.offset, victim.batch, seg, len(recs), end)

	c.Start(0)
	code, stderr, ok := c.WaitExit(0, 10*time.Second)
	if !ok {
		t.Fatalf("%s still running 10s after restarting on a corrupt WAL", c.Members[0].Name)
	}
	if code == 0 {
		t.Errorf("%s exited 0 on a corrupt WAL, want a non-zero status", c.Members[0].Name)
	}
	if strings.Contains(stderr, readyLine) {
		t.Errorf("%s logged %q on a corrupt WAL", c.Members[0].Name, readyLine)
	}
	if !strings.Contains(strings.ToLower(stderr), "corrupt") {
		t.Errorf("stderr does not say corrupt:\n%s", tail(stderr, 20))
	}
	if !strings.Contains(stderr, filepath.Base(seg)) {
		t.Errorf("stderr does not name the file %s:\n%s", filepath.Base(seg), tail(stderr, 20))
	}
	if !strings.Contains(stderr, fmt.Sprintf("offset %d", victim.offset)) {
		t.Errorf("stderr does not give the damaged record's offset (\"offset %d\"):\n%s", victim.offset, tail(stderr, 20))
	}
	t.Logf("%s exited %d: %s", c.Members[0].Name, code, strings.TrimSpace(tail(stderr, 1)))
}
