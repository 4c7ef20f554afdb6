// Package snap stores raft snapshots as files: one self-checking file per
// snapshot, written atomically and durably.
//
// # What it owns, what it must never do
//
// snap owns the *.snap, *.snap.tmp and *.snap.broken files in its directory.
// It never interprets snapshot data, never touches the filesystem except
// through the injected vfs.FS, and never deletes a snapshot that failed its
// checks (it renames it to *.broken for an operator). It does not decide
// which snapshot the raft log needs: LoadNewest takes the WAL's snapshot
// marks (wal.SnapshotMark, imported from package wal so both sides share one
// type).
//
// # Concurrency
//
// All methods may be called from any goroutine. Save and SaveStream write
// their temp file without holding the Snapshotter's mutex (a large
// snapshot is written in the background while the member runs) and take it
// only to rename and fsync the directory; Purge skips the temp files being
// written, and Load, LoadNewest and Purge never see a temp file as a
// snapshot.
//
// # Files
//
//	%016x-%016x.snap         term - index, lower-case hex
//	%016x-%016x.snap.tmp     a Save in progress, or interrupted by a crash
//	%016x-%016x.snap.broken  failed its checks during LoadNewest
//
// # File format
//
// All integers little-endian. A file is a 32-byte header, the metadata and
// the data, and nothing after them:
//
//	offset size field
//	0      8    magic      "CONCSNAP"
//	8      4    version    1
//	12     4    crc        CRC-32C (Castagnoli) of every byte from offset 16
//	                       to the end of the file (SaveStream writes the
//	                       data first and combines its CRC with the
//	                       header's afterwards)
//	16     4    meta len   m
//	20     4    reserved   zero
//	24     8    data len   d
//	32     m    metadata   protobuf encoding of raftpb.SnapshotMetadata
//	                       (index, term, conf state)
//	32+m   d    data       the snapshot's opaque data
//
// A file loads only if the magic, version and reserved bytes are right, its
// length is exactly 32+m+d, the CRC matches, the metadata decodes, and the
// metadata's index and term equal the ones in the file name. Anything else
// is ErrCorrupt, naming the file.
//
// # Durability
//
// Save writes <name>.snap.tmp, fsyncs it, renames it to <name>.snap and
// fsyncs the directory. A crash at any point leaves either the complete file
// under its final name or no final name at all (plus, perhaps, a temp file
// that Load ignores and Purge deletes). The caller records the WAL mark only
// after Save returns, so a mark always names a durable file.
package snap
