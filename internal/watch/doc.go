// Package watch is Concord's watch hub: it turns the events every applied
// write produces into ordered, gap-free, duplicate-free streams of changes for
// watchers of a key or a key range, from any retained revision on.
//
// # Model
//
// A Hub holds watchers grouped in Streams; a Stream is what one consumer (one
// etcd Watch RPC, say) drains. Each watcher has a key or range, a start
// revision, filters (no puts, no deletes), whether it wants the replaced
// value (prev_kv) and whether it wants periodic progress notifications, and
// next: the first revision it has not been handed yet.
//
// A watcher is synced or unsynced:
//
//   - Synced: it needs nothing from history. Notify appends the events of a
//     revision that it matches to its bounded buffer, all of them or none: a
//     revision that does not fit whole makes it unsynced at that revision. A
//     watcher whose start revision lies in the future is synced and simply
//     ignores revisions below its start.
//   - Unsynced: it must read history from next on. It was created with a past
//     start revision, its buffer overflowed, or a snapshot restore jumped the
//     revision past it. Its stream catches it up from the History (mvcc) in
//     bounded batches of whole revisions; when a batch reaches the hub's
//     revision it is synced again, atomically with respect to Notify (both
//     hold the hub lock, and Notify only hands out revisions >= next, so no
//     revision is delivered twice or skipped).
//
// If the history an unsynced watcher needs was compacted away, it is cancelled
// with a response carrying the compaction revision (etcd's compacted watch):
// never a silent gap.
//
// # Pull, not push
//
// The hub owns no goroutine. Notify (the apply path) only appends to buffers
// and signals streams; it never blocks, never does IO and costs O(events ×
// candidate watchers) under the hub lock. Each stream's consumer goroutine
// waits on Stream.Ready and pulls responses with Stream.Next, which also does
// the history reads for that stream's unsynced watchers, outside the hub lock.
// A slow consumer therefore only delays itself: its watchers overflow into
// unsynced and later catch up from history at the consumer's own pace, while
// apply and every other stream go on. Memory per watcher is bounded by
// Config.BufferEvents events and Config.ResponseBytes bytes (events alias the
// store's bytes; the bound is on what one response carries), plus one
// history batch in flight, itself bounded by BatchRevisions, BatchEvents and
// ResponseBytes (a single revision larger than those still goes whole).
//
// # Matching index
//
// Single-key watchers sit in a map by key: O(1) per event. Range and from-key
// watchers sit in a slice sorted by start key; an event visits those whose
// start is <= its key (binary search, then a scan checking the end). That is
// O(log R + R≤k) per event for R range watchers, which is fine for thousands
// of prefix watchers (see BenchmarkNotify); an interval tree would bound the
// scan by the matches if it ever shows up in profiles.
//
// # Progress
//
// Stream.RequestProgress answers with one response for the whole stream
// (WatchID AllWatchers) carrying the hub revision, but only if every watcher
// of the stream is synced and none waits for a future start revision (etcd's
// rule, plus etcd's fix for #20221); otherwise the request is dropped, as etcd
// does. Stream.ProgressTick does the same per watcher that asked for progress
// notifications and got no events since the previous tick. A progress
// response is placed after every event already buffered for the watchers it
// speaks for, so "no future event has a revision <= Rev" holds in stream
// order.
//
// # Concurrency and goroutines
//
// One mutex (Hub.mu) guards all hub, stream and watcher state. Lock order:
// Hub.mu is never held while calling History (the mvcc store takes its own
// lock), and Notify/Restore are never called with the store's lock held, so
// the two locks never nest. Notify and Restore are called by the apply
// goroutine, in revision order. Watch, Cancel, RequestProgress, ProgressTick
// and Close may be called from any goroutine; Next must be called by one
// goroutine per stream at a time (the consumer). No goroutine is started by
// this package.
//
// # What it must never do
//
// Block or do IO in Notify or Restore; hold the hub lock while reading
// history; import gRPC, net/http or a front-end's wire types; read a clock
// (progress ticks are driven by the caller).
package watch
