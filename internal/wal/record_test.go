package wal

import (
	"bytes"
	"errors"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// encodeOne frames payload as a single record.
func encodeOne(typ, flags byte, batch uint32, payload []byte) []byte {
	rec := make([]byte, recordSize(len(payload)))
	copy(rec[recordHeaderSize:], payload)
	sealRecord(rec, typ, flags, batch, len(payload))
	return rec
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		typ     byte
		flags   byte
		batch   uint32
		payload []byte
		size    int
	}{
		{"empty payload", recEntry, 0, 1, nil, 16},
		{"one byte pads to 8", recEntry, flagBatchEnd, 2, []byte{7}, 24},
		{"exactly aligned", recHardState, flagBatchEnd, 3, make([]byte, 24), 40},
		{"seven bytes", recSnapshotMark, 0, 1 << 31, []byte("abcdefg"), 24},
		{"nine bytes", recSegmentHeader, flagBatchEnd, ^uint32(0), []byte("abcdefghi"), 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeOne(tt.typ, tt.flags, tt.batch, tt.payload)
			if len(b) != tt.size || len(b)%recordAlign != 0 {
				t.Fatalf("encoded size = %d, want %d", len(b), tt.size)
			}
			// Trailing bytes after the record must not matter.
			rec, err := decodeRecord(append(b, 0xff, 0xff))
			if err != nil {
				t.Fatalf("decodeRecord = %v", err)
			}
			if rec.typ != tt.typ || rec.flags != tt.flags || rec.batch != tt.batch ||
				!bytes.Equal(rec.payload, tt.payload) || rec.size != tt.size {
				t.Fatalf("decodeRecord = %+v, want type %d flags %d batch %d payload %q size %d",
					rec, tt.typ, tt.flags, tt.batch, tt.payload, tt.size)
			}
		})
	}
}

func TestRecordDecodeErrors(t *testing.T) {
	good := encodeOne(recEntry, flagBatchEnd, 9, []byte("hello")) // 5-byte payload, 3 padding
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errShortHeader},
		{"15 bytes", good[:15], errShortHeader},
		{"zeros", make([]byte, 64), errBadType},
		{"type 0", mut(func(b []byte) []byte { b[8] = 0; return b }), errBadType},
		{"type 5", mut(func(b []byte) []byte { b[8] = 5; return b }), errBadType},
		{"unknown flag", mut(func(b []byte) []byte { b[9] = 2; return b }), errBadFlags},
		{"reserved byte", mut(func(b []byte) []byte { b[11] = 1; return b }), errReserved},
		{"payload cut", good[:20], errShortRecord},
		{"padding cut", good[:len(good)-1], errShortRecord},
		{"huge length", mut(func(b []byte) []byte { le.PutUint32(b[4:], 0xffffffff); return b }), errShortRecord},
		{"length grows", mut(func(b []byte) []byte { le.PutUint32(b[4:], 6); return b }), errCRC},
		{"payload flip", mut(func(b []byte) []byte { b[17] ^= 1; return b }), errCRC},
		{"crc flip", mut(func(b []byte) []byte { b[0] ^= 0x80; return b }), errCRC},
		{"batch flip", mut(func(b []byte) []byte { b[12] ^= 1; return b }), errCRC},
		{"flag cleared", mut(func(b []byte) []byte { b[9] = 0; return b }), errCRC},
		{"padding dirty", mut(func(b []byte) []byte { b[len(b)-1] = 1; return b }), errPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("decodeRecord(%x) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	t.Run("entry", func(t *testing.T) {
		for _, e := range []*raftpb.Entry{
			ent(1, 1, ""),
			ent(1<<40, 7, "payload"),
			{Index: ent(3, 2, "").Index, Term: ent(3, 2, "").Term, Type: raftpb.EntryConfChangeV2.Enum(), Data: []byte{0, 1, 2}},
		} {
			p := make([]byte, entryPayloadLen(e))
			putEntry(p, e)
			got, err := decodeEntry(p)
			if err != nil {
				t.Fatal(err)
			}
			if got.index != e.GetIndex() || got.term != e.GetTerm() || got.typ != e.GetType() || !bytes.Equal(got.data, e.GetData()) {
				t.Fatalf("decodeEntry(putEntry(%s)) = %+v", entryString(e), got)
			}
			if s := entryString(newEntry(got)); s != entryString(e) {
				t.Fatalf("newEntry = %s, want %s", s, entryString(e))
			}
		}
		if _, err := decodeEntry(make([]byte, 19)); !errors.Is(err, errEntryPayload) {
			t.Fatalf("decodeEntry(19 bytes) = %v, want %v", err, errEntryPayload)
		}
	})
	t.Run("hard state", func(t *testing.T) {
		h := hardState{term: 3, vote: 2, commit: 1 << 50}
		p := make([]byte, hardStateSize)
		putHardState(p, h)
		if got, err := decodeHardState(p); err != nil || got != h {
			t.Fatalf("decodeHardState = %+v, %v; want %+v", got, err, h)
		}
		if got := hardStateOf(h.proto()); got != h {
			t.Fatalf("hardStateOf(proto) = %+v, want %+v", got, h)
		}
		if _, err := decodeHardState(p[:23]); !errors.Is(err, errHardStatePayload) {
			t.Fatalf("decodeHardState(23 bytes) = %v", err)
		}
	})
	t.Run("snapshot mark", func(t *testing.T) {
		m := SnapshotMark{Index: 99, Term: 4}
		p := make([]byte, snapshotMarkSize)
		putMark(p, m)
		if got, err := decodeMark(p); err != nil || got != m {
			t.Fatalf("decodeMark = %+v, %v; want %+v", got, err, m)
		}
		if _, err := decodeMark(append(p, 0)); !errors.Is(err, errMarkPayload) {
			t.Fatalf("decodeMark(17 bytes) = %v", err)
		}
	})
	t.Run("segment header", func(t *testing.T) {
		h := segmentHeader{seq: 5, firstIndex: 0x1a2f, metadata: []byte("member-1")}
		p := make([]byte, segmentHeaderFixed+len(h.metadata))
		putSegmentHeader(p, h)
		got, err := decodeSegmentHeader(p)
		if err != nil || got.seq != h.seq || got.firstIndex != h.firstIndex || !bytes.Equal(got.metadata, h.metadata) {
			t.Fatalf("decodeSegmentHeader = %+v, %v; want %+v", got, err, h)
		}
		bad := bytes.Clone(p)
		bad[0] = 'X'
		if _, err := decodeSegmentHeader(bad); !errors.Is(err, errHeaderMagic) {
			t.Fatalf("bad magic: %v", err)
		}
		bad = bytes.Clone(p)
		bad[8] = 2
		if _, err := decodeSegmentHeader(bad); !errors.Is(err, errHeaderVersion) {
			t.Fatalf("bad version: %v", err)
		}
		if _, err := decodeSegmentHeader(p[:31]); !errors.Is(err, errHeaderPayload) {
			t.Fatalf("short header: %v", err)
		}
	})
}

func TestSegmentName(t *testing.T) {
	tests := []struct {
		name      string
		seq, idx  uint64
		ok        bool
		roundTrip bool
	}{
		{"0000000000000002-0000000000001a2f.wal", 2, 0x1a2f, true, true},
		{"0000000000000000-0000000000000000.wal", 0, 0, true, true},
		{"ffffffffffffffff-ffffffffffffffff.wal", ^uint64(0), ^uint64(0), true, true},
		{"0000000000000002-0000000000001A2F.wal", 0, 0, false, false}, // upper case is not ours
		{"0000000000000002-0000000000001a2f.wal.tmp", 0, 0, false, false},
		{"000000000000002-0000000000001a2f.wal", 0, 0, false, false},
		{"0000000000000002_0000000000001a2f.wal", 0, 0, false, false},
		{"0000000000000002-0000000000001a2f.snap", 0, 0, false, false},
		{"000000000000000g-0000000000001a2f.wal", 0, 0, false, false},
	}
	for _, tt := range tests {
		seq, idx, ok := parseSegmentName(tt.name)
		if ok != tt.ok || seq != tt.seq || idx != tt.idx {
			t.Errorf("parseSegmentName(%q) = %d, %d, %v; want %d, %d, %v", tt.name, seq, idx, ok, tt.seq, tt.idx, tt.ok)
		}
		if tt.roundTrip && segmentName(tt.seq, tt.idx) != tt.name {
			t.Errorf("segmentName(%d, %d) = %q, want %q", tt.seq, tt.idx, segmentName(tt.seq, tt.idx), tt.name)
		}
	}
}
