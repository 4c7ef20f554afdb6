// Package transport carries raft messages between Concord members over TCP.
//
// It owns the peer connections of one member: one outbound message stream per
// peer, the inbound streams peers open to us, and a short-lived connection per
// snapshot. It hands what arrives to a [Handler] (the raft node) and tells it
// when a peer is unreachable and how a snapshot send ended.
//
// It must never block the raft loop: [Transport.Send] only enqueues, and a
// full queue drops the message and reports the peer unreachable (raft
// retransmits). It must never import gRPC, net/http or a front-end, and it
// does not interpret messages beyond their addressing.
//
// # Streams
//
// Every connection is dialed by the sender and starts with a handshake. Its
// kind is then one of:
//
//   - message: long-lived, one per (sender, receiver) pair. The sender's
//     writer goroutine drains the peer's queue into a bufio.Writer and flushes
//     once per batch (at most 1024 messages or about 4 MiB). The receiver
//     reads frames and calls Handler.Process in order. Only the sender writes
//     after the handshake.
//   - snapshot: one per MsgSnap, so that hundreds of megabytes of snapshot
//     never queue behind (or in front of) heartbeats. The receiver answers
//     with one ack byte, then both sides close.
//   - request: one request and its answer (Request, RequestHandler), e.g.
//     the member list a joining member asks for before it knows its own id.
//
// All integers are big-endian.
//
// # TLS
//
// With Config.TLS set, every connection the Transport dials — message,
// snapshot and request streams, and the package function Request given a
// *tls.Config — is a TLS client that completes its handshake, within
// DialTimeout, before the hello below; the server name verified is the
// peer address's host unless the config names one. Inbound TLS is the
// caller's: it hands Serve a listener from tls.NewListener, and the
// Transport completes each accepted connection's handshake (same bound)
// before reading the hello, so a refused certificate is logged as such. The
// framing below is unchanged inside TLS. TLS connections are closed without
// close_notify (every stream delimits its own data), so closing one never
// waits on a peer that stopped reading.
//
// # Handshake
//
// Hello, sent by the dialer, 32 bytes:
//
//	offset size field
//	0      4    magic "CNCD" (0x43 0x4E 0x43 0x44)
//	4      1    protocol version, 1
//	5      1    stream kind: 1 = message, 2 = snapshot, 3 = request
//	6      2    reserved, zero
//	8      8    cluster id
//	16     8    from: the dialer's member id
//	24     8    to: the member id the dialer expects to reach
//
// Reply, sent by the acceptor, 4 bytes plus reason:
//
//	offset size field
//	0      1    the acceptor's protocol version
//	1      1    code: 0 accept, 1 unsupported version, 2 cluster id mismatch,
//	            3 wrong member (to is not the acceptor), 4 unknown kind,
//	            5 bad sender id (0 or the acceptor's own),
//	            6 member removed (from names a member removed from the
//	            cluster; the dialer's RemovalHandler hears ReportRemoved)
//	2      2    reason length n, at most 1024
//	4      n    reason, UTF-8 text for the dialer's log; empty on accept
//
// A refusal is logged by both sides, the dialer quoting the acceptor's
// reason, and the acceptor closes the connection. Bytes that do not start
// with the magic, or a hello with non-zero reserved bytes, are not answered:
// the connection is just closed. The acceptor allows DialTimeout for the
// hello; the dialer allows DialTimeout for dial plus reply.
//
// # Message stream
//
// After the handshake, a sequence of frames:
//
//	offset size field
//	0      4    n: length of the message, 1 <= n <= MaxMessageBytes
//	4      n    raftpb.Message, protobuf binary encoding
//
// A frame whose length is 0 or over the cap, a message that does not decode,
// one whose To is not the acceptor, or one whose From is not the dialer ends
// the stream (the receiver closes it). The exception is the From of the
// messages raft relays to its leader unchanged (MsgProp, MsgReadIndex,
// MsgTransferLeader): a follower that was the leader a moment ago passes on
// what other members had sent it, under their ids. A peer that opens a new
// message stream replaces its previous one, which the receiver closes.
//
// A request hello names no member: from and to may be 0, and a cluster id
// of 0 is accepted by any cluster (a joining member does not know it yet).
//
// # Request stream
//
// After the handshake the dialer writes one request, the acceptor answers
// once, and both close:
//
//	request: 4 bytes n (n <= 16 MiB), then n bytes of body
//	answer:  1 byte status (0 ok, 1 error), 4 bytes n (n <= 16 MiB), then
//	         n bytes: the RequestHandler's answer, or its error text
//
// The body's meaning belongs to the RequestHandler (package server documents
// its requests); the transport carries it opaque.
//
// # Snapshot stream
//
// A MsgSnap from the raft core carries no data (raftnode keeps none in
// memory); the sender goroutine streams it from the snapshot file through
// Config.SnapshotData, 1 MiB at a time, so sending a large state costs the
// sender one buffer, not a copy of the state. A failed read, including a
// file that fails its own checksum at its end, aborts the stream before its
// CRC, so the receiver never acknowledges it: a failed send. After the
// handshake, the dialer writes:
//
//	offset  size field
//	0       4    h: length of the header message, 1 <= h <= MaxMessageBytes
//	4       h    the MsgSnap raftpb.Message with Snapshot.Data left out
//	4+h     8    d: length of the snapshot data, d <= the receiver's MaxSnapshotBytes
//	12+h    d    the snapshot data, written in 1 MiB chunks
//	12+h+d  4    CRC-32C (Castagnoli) of the data
//
// The receiver reads it all, checks the CRC, restores Snapshot.Data, calls
// Handler.Process, and then writes one byte: 0x01 delivered, 0x00 checksum
// mismatch. Any other end (error, cap exceeded, timeout) closes without an
// ack. The sender reports ReportSnapshot(id, false) only after reading 0x01;
// every other outcome is ReportSnapshot(id, true). Each chunk, and the wait
// for the ack, has its own IOTimeout.
//
// # Fault injection
//
// With Config.Interceptor set (the fault plane, package faults), Send asks
// it about every message to a known peer, MsgSnap included, before queuing
// it. A dropped message vanishes silently, as on a lossy network; a dropped
// MsgSnap is reported failed so raft retries it later. A delayed message
// (and its copies) waits in one heap ordered by due time and Send order, so
// a fixed delay keeps a link's order and jitter reorders it; when due it is
// queued like a fresh Send, without asking the Interceptor again. A full
// delay heap (QueueSize×16 messages) drops like a full peer queue. Extra
// copies are queued right after the message; a MsgSnap is never copied.
// Messages still held when the Transport closes are discarded (snapshots
// among them reported failed). The hook costs Send one interface call per
// message; the fault plane answers with one atomic load when no rule is
// installed.
//
// # Goroutines
//
// Every goroutine below is started by the Transport, counted in its
// WaitGroup (the stream watcher is instead waited for by the writer that
// started it), and stopped by Close, which cancels the Transport's context,
// closes the listeners and waits. Every connection registers a
// context.AfterFunc that closes it when its context ends, which is what
// unblocks reads, writes and dials.
//
//   - accept loop, one per Serve call: owned by the Transport; ends when its
//     listener is closed (by Close).
//   - inbound connection, one per accepted connection: handshake, then reads
//     a message stream or one snapshot. Ends when the peer closes, on a
//     protocol error, when replaced by a newer stream from the same peer, or
//     when Close closes the connection.
//   - peer writer (runPeer), one per peer: dials with backoff, writes
//     batches, redials when the stream breaks. Owned by the peer; ends when
//     RemovePeer, AddPeer with a new address, or Close cancels the peer's
//     context (a child of the Transport's). RemovePeer and AddPeer wait for it.
//   - stream watcher, one per live outbound message stream: blocks in Read to
//     notice at once when the peer closes the stream. Owned by its writer,
//     which closes the connection and waits for it before redialing or
//     returning.
//   - delayer (runDelays), at most one: started by the first delayed
//     message, queues held messages when due; ends when Close cancels the
//     Transport's context.
//   - snapshot sender, one per MsgSnap passed to Send: dials, streams, waits
//     for the ack, reports. Ends on completion, on error, or when its peer's
//     context ends (RemovePeer or Close), which closes its connection.
//
// # Locks
//
// Transport.mu guards the peer map, the listeners, the inbound-stream map and
// the closed flag. Transport.randMu guards the injected random source and is
// a leaf. The delay heap's mutex is a leaf taken under mu's read lock (Send)
// or alone (the delayer). Order: mu before randMu (in practice they are
// never nested), mu before the delay heap's. The Interceptor is called under
// mu's read lock and must not call back. No lock is held while calling the
// Handler, dialing, doing network IO, or waiting for a goroutine. Per-peer
// counters are atomics.
//
// # Handler contract
//
// Handler methods are called from transport goroutines and, for
// ReportUnreachable and ReportSnapshot, from inside Send. They must not block
// and must not call back into the Transport. No Handler method is called
// after Close returns.
//
// ReportDown is the transport's part in failure detection: a dial refused
// at the TCP level (ECONNREFUSED) means the peer's host is up and nothing
// listens at its address, i.e. its process is gone. Without TLS, a dial
// whose connection is reset (ECONNRESET) after our hello and before the
// reply means the same caught a moment earlier: a dying process's listener
// took the connection and was closed with it (a running member answers
// every hello, if only to refuse it). With TLS a reset is not counted: a
// running peer that refuses our certificate, or a plain listener that takes
// our ClientHello for a bad hello, also closes with our bytes unread. A
// dial that times out, or a handshake refused by a running peer, is only
// ReportUnreachable. A peer's writer redials at once a stream
// that broke after lasting at least MinBackoff (one that broke sooner waits
// its backoff), so a killed peer is reported within a round trip of its
// death.
//
// # Deviation from the raft v2/v3.5 API shape
//
// go.etcd.io/raft/v3 v3.7 generates raftpb with google.golang.org/protobuf:
// messages hold internal state that must not be copied, and RawNode uses
// *raftpb.Message throughout (Ready.Messages is []*raftpb.Message). So
// Handler.Process and Transport.Send take pointers.
package transport
