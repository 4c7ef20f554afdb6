// Package wal is the durable raft log: hard states, entries and snapshot
// marks appended to preallocated, CRC-checked segment files and fsync'd once
// per raft Ready.
//
// # What it owns, what it must never do
//
// wal owns the files in its directory and nothing else. It never interprets
// entry data, never reads a clock, and never touches the filesystem except
// through the injected vfs.FS (vfs.Default in production, a crashable MemFS
// in tests). It never silently skips a damaged record: a torn tail is cut
// off (and logged at warn); any other damage stops Open with a
// *CorruptError naming the file and byte offset.
//
// # Why it is hand-written
//
// No library gives a raft WAL over pebble's vfs seam with these crash rules:
// etcd's WAL is bound to the os package and its own file locking, pebble's
// record log has no notion of raft batches, overwritten tails or snapshot
// marks, and neither distinguishes an unacknowledged torn batch from damage
// to acknowledged data the way rule 2 below requires. The format is small
// enough to own outright.
//
// # Concurrency
//
// All WAL methods may be called from any goroutine; they serialize on one
// mutex. Save and SaveSnapshotMark hold it across their fsync, so ReleaseTo
// waits for an in-flight Save. In practice the raft loop is the only caller
// of Save. After a write or sync error the WAL is poisoned (every call
// returns that error): after a failed fsync the kernel may have dropped the
// pages, so the only safe continuation is to stop and re-Open.
//
// # Files
//
// The directory holds segment files named
//
//	%016x-%016x.wal      sequence number - first index, lower-case hex
//
// e.g. 0000000000000002-0000000000001a2f.wal. Sequence numbers start at 0
// and increase by one per segment; the first index is the index the first
// entry written to the segment was expected to have (0 for the segment made
// by Create). Open lists the directory, sorts by sequence number and requires
// the sequence numbers to be consecutive: a missing segment is a
// *CorruptError. ReleaseTo removes segments only from the old end, so the
// chain stays contiguous. Files named *.wal.tmp are segments whose creation
// a crash interrupted; Open and Create delete them. Other files are ignored.
//
// # Record framing
//
// A segment is a sequence of records, each starting at an 8-byte-aligned
// offset. All integers are little-endian. A record is a 16-byte header, the
// payload, and 0-7 zero bytes of padding up to the next multiple of 8:
//
//	offset size field
//	0      4    crc      CRC-32C (Castagnoli) of bytes 4..16+length, i.e. the
//	                     rest of the header followed by the payload
//	4      4    length   payload length in bytes (padding not included)
//	8      1    type     1 segment header, 2 entry, 3 hard state,
//	                     4 snapshot mark; 0 and 5..255 are invalid
//	9      1    flags    bit 0: last record of its batch; bits 1..7 zero
//	10     2    reserved zero
//	12     4    batch    batch number (see below)
//	16     n    payload
//	16+n   p    padding  zero, p = (8 - n%8) % 8
//
// A record decodes only if the type and flags are valid, the reserved bytes
// and the padding are zero, the whole record lies inside the file, and the
// CRC matches. A run of zeros never decodes (type 0).
//
// # Batches
//
// Every durable write is one batch: the records of one Save, the one record
// of a SaveSnapshotMark, or the header group of a new segment. All records of
// a batch carry the same batch number, the last one has flag bit 0 set, and
// each batch's number is the previous batch's plus one (mod 2^32), across
// segment boundaries too. A batch is written with one WriteAt and made
// durable with one fdatasync before the call returns, so a batch whose
// closing record is on disk was complete when it was synced. Open applies
// only complete batches: a Save is atomic across a crash.
//
// # Payloads
//
// Segment header (type 1), always the first record of a segment and nowhere
// else:
//
//	0   8  magic       "CONCWAL\x00"
//	8   4  version     1
//	12  4  reserved    zero
//	16  8  sequence    must equal the sequence number in the file name
//	24  8  first index must equal the first index in the file name
//	32  m  metadata    the opaque bytes given to Create; identical in every
//	                   segment
//
// The header group (the segment's first batch) is the header record,
// followed by a hard state record with the current hard state (if any was
// saved) and a snapshot mark record with the newest mark (if any). Repeating
// them is what lets ReleaseTo delete old segments without losing the newest
// hard state, mark or metadata.
//
// Entry (type 2), one raft entry:
//
//	0   8  term
//	8   8  index       never 0
//	16  4  type        raftpb.EntryType as a uint32
//	20  d  data        the entry's data (d = length - 20; may be 0)
//
// Hard state (type 3), length exactly 24: term(8) vote(8) commit(8).
//
// Snapshot mark (type 4), length exactly 16: index(8) term(8).
//
// A Save batch is its entries in index order followed by the hard state (if
// not empty), so the flag sits on the hard state record, or on the last entry
// when there is no hard state.
//
// # Reading and overwritten tails
//
// Open replays complete batches in order. Entries with index <= the
// snapshot's index are dropped. An entry whose index is at or below the
// current tail replaces that index and truncates everything after it (raft
// overwrites uncommitted tails); an entry more than one past the tail, or a
// first entry that is not snapshot index + 1, is ErrGap. The last hard state
// wins; every mark is reported (consecutive duplicates collapsed).
//
// # Reading entries back
//
// Entries reads saved entries of the current log back from the segments,
// for the raft core, which keeps only its newest entries in memory
// (entries.go). The WAL remembers, per Save, the index range and location
// of its entry records, trimmed by later overwrites exactly as Open's
// replay trims the log; released segments take their ranges with them.
//
// # Torn tails and corruption
//
// Where decoding stops before the end of a segment's data:
//
//  1. If no batch is open and every remaining byte is zero, the segment ends
//     cleanly (preallocated space, or space zeroed by an earlier repair).
//  2. In any segment but the last, anything else is a *CorruptError: a
//     segment is only ever followed by another once its last batch was
//     synced.
//  3. In the last segment, the damaged record belongs to batch D (the open
//     batch, or the one after the last complete batch). Open scans every
//     8-byte-aligned offset after it for a record that decodes and carries a
//     batch number later than D. If one exists, batch D was synced before
//     that later batch was written, so D's damage is corruption: a
//     *CorruptError naming the damaged record's file and offset. If none
//     exists, the damage is a torn tail: the unacknowledged end of the last
//     write, possibly with holes (a crash persists the unsynced blocks of a
//     write in any order).
//
// A batch still open at the end of the last segment's data is also a torn
// tail. A torn tail is repaired by zeroing from the end of the last complete
// batch to the last non-zero byte, fdatasync, and a warning; appends then
// continue at the end of the last complete batch. The header group of a
// segment is synced before the segment gets its name, so a damaged header
// group is always corruption. What this cannot detect: damage confined to
// the very last complete batch of the log is indistinguishable from a torn
// write and is cut off like one.
//
// # fsync rules
//
//   - Save / SaveSnapshotMark: one WriteAt of the encoded batch at the end of
//     the data, then one fdatasync of the segment. Nothing else, unless the
//     batch does not fit (below). A Save with no entries that only moves the
//     commit index (same term and vote) writes nothing: the newer commit
//     index is carried by the next hard state record written, in a batch or
//     a segment header. After a crash the commit index may therefore be
//     lower than the last one passed to Save; raft relearns it.
//   - Rollover, when the batch would pass SegmentSize and the current segment
//     holds more than its header group: create <name>.wal.tmp, Preallocate
//     SegmentSize bytes, write the header group, fsync the file, rename it to
//     <name>.wal, fsync the directory. Then the batch is written to the new
//     segment as above. A batch larger than SegmentSize goes alone into a
//     fresh segment that grows past its preallocation.
//   - Create: create the directory (fsync'ing the parent of every directory
//     it made), then segment 0 as in rollover.
//   - ReleaseTo: remove segments oldest first, fsync'ing the directory after
//     each removal, so a crash leaves a contiguous suffix of the chain.
//   - Open: torn-tail repair writes zeros and fdatasyncs before any append.
//   - Zero-ahead (Config.ZeroAhead, zero.go): a goroutine writes zeros over
//     the next ZeroAhead bytes of the current segment, through a handle of
//     its own, and fdatasyncs them, whenever less than half of that is left
//     after the append offset. A Save that would reach a range being zeroed
//     waits for it; rollover and Close wait for it too. So a Save overwrites
//     blocks already in the file and its fdatasync carries no metadata.
//     Nothing depends on the zeros: the data ends at the last complete batch.
//   - Config.UnsafeNoSync (a deliberate break, for proving the durability
//     checkers): Save and SaveSnapshotMark write but skip their fdatasync,
//     so a power loss may take back batches already acknowledged. Rollover
//     first fdatasyncs the full segment, and creation and repair sync as
//     above, so the chain rules of this page still hold after a crash that
//     keeps unsynced blocks in order; one that keeps a later block but not
//     an earlier one is reported as corruption, as for any log.
package wal
