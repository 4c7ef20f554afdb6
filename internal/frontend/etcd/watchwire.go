package etcd

import (
	"bytes"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/protofield"
	"github.com/concord-db/concord/internal/server"
	"github.com/concord-db/concord/internal/watch"
)

// Watch events are written to the wire straight from the hub's events.
// Through etcd's message types, a response of n events cost n Event and
// KeyValue messages built and then marshalled by reflection: 60% of a
// member's watch-serving CPU in the fan-out benchmark (bench/STEPS.md). The
// hub's events already hold every field, so they are encoded here with
// protowire, byte for byte what proto.Marshal makes of the same
// WatchResponse (TestWatchWireMatchesProto), and handed to gRPC through
// codec, which passes them through.

// Field numbers of etcd's api/etcdserverpb/rpc.proto and mvccpb/kv.proto.
const (
	hdrClusterID, hdrMemberID, hdrRevision, hdrRaftTerm protowire.Number = 1, 2, 3, 4

	// WatchResponse's created (3) and fragment (7) are never set here.
	wrHeader, wrWatchID, wrCanceled, wrCompactRevision, wrCancelReason, wrEvents protowire.Number = 1, 2, 4, 5, 6, 11

	evType, evKV, evPrevKV protowire.Number = 1, 2, 3

	kvKey, kvCreateRevision, kvModRevision, kvVersion, kvValue, kvLease protowire.Number = 1, 2, 3, 4, 5, 6
)

// wireWatch is a hub response with its header, sent with SendMsg: codec
// encodes it. Its events alias the hub's and are only valid until the
// stream's next call to Next, which is fine: gRPC encodes during SendMsg.
type wireWatch struct {
	hdr    server.Header
	resp   *watch.Response
	reason string      // cancel_reason
	cache  *eventCache // the stream's; nil: a fresh one, for this response only
}

// eventCache is a stream's last encoded events. A stream's watchers of the
// same keys are sent the same events one after the other (a fan-out of one
// key to a hundred watchers is a hundred responses alike but for the watch
// id), so each run of them is encoded once. Only the stream's goroutine
// uses it.
type eventCache struct {
	evs []mvcc.Event // a copy of what enc encodes
	enc []byte
}

// maxCachedEvents bounds what a stream keeps between responses: a larger
// encoding (a catch-up batch, say) is let go once it is sent, so an idle
// stream does not hold megabytes of events.
const maxCachedEvents = 64 << 10

func (c *eventCache) trim() {
	if cap(c.enc) > maxCachedEvents {
		clear(c.evs)
		c.evs, c.enc = nil, nil
	}
}

// encoded returns the encoding of evs as WatchResponse.events fields.
func (c *eventCache) encoded(evs []mvcc.Event) []byte {
	if !sameEvents(c.evs, evs) {
		clear(c.evs) // drop the old values' references before reuse
		c.evs = append(c.evs[:0], evs...)
		c.enc = appendEvents(c.enc[:0], evs)
	}
	return c.enc
}

func sameEvents(a, b []mvcc.Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Type != y.Type || !sameKV(&x.KV, &y.KV) {
			return false
		}
		if x.PrevKV != y.PrevKV && (x.PrevKV == nil || y.PrevKV == nil || !sameKV(x.PrevKV, y.PrevKV)) {
			return false
		}
	}
	return true
}

// sameKV compares contents; the store's events share their byte slices, so
// bytes.Equal mostly finds the same pointer and returns at once.
func sameKV(x, y *mvcc.KeyValue) bool {
	return x.ModRevision == y.ModRevision && x.CreateRevision == y.CreateRevision && x.Version == y.Version &&
		x.Lease == y.Lease && bytes.Equal(x.Key, y.Key) && bytes.Equal(x.Value, y.Value)
}

func headerSize(h *server.Header) int {
	return protofield.SizeVarint(hdrClusterID, h.ClusterID) + protofield.SizeVarint(hdrMemberID, h.MemberID) +
		protofield.SizeVarint(hdrRevision, uint64(h.Revision)) + protofield.SizeVarint(hdrRaftTerm, h.RaftTerm)
}

// appendHeader appends h as the ResponseHeader field n, which every
// response carries (proto3 sends an empty message field too).
func appendHeader(b []byte, n protowire.Number, h *server.Header) []byte {
	b = protofield.AppendMessageHead(b, n, headerSize(h))
	b = protofield.AppendVarint(b, hdrClusterID, h.ClusterID)
	b = protofield.AppendVarint(b, hdrMemberID, h.MemberID)
	b = protofield.AppendVarint(b, hdrRevision, uint64(h.Revision))
	return protofield.AppendVarint(b, hdrRaftTerm, h.RaftTerm)
}

func kvSize(kv *mvcc.KeyValue) int {
	return protofield.SizeBytes(kvKey, len(kv.Key)) + protofield.SizeVarint(kvCreateRevision, uint64(kv.CreateRevision)) +
		protofield.SizeVarint(kvModRevision, uint64(kv.ModRevision)) + protofield.SizeVarint(kvVersion, uint64(kv.Version)) +
		protofield.SizeBytes(kvValue, len(kv.Value)) + protofield.SizeVarint(kvLease, uint64(kv.Lease))
}

func appendKV(b []byte, kv *mvcc.KeyValue) []byte {
	b = protofield.AppendBytes(b, kvKey, kv.Key)
	b = protofield.AppendVarint(b, kvCreateRevision, uint64(kv.CreateRevision))
	b = protofield.AppendVarint(b, kvModRevision, uint64(kv.ModRevision))
	b = protofield.AppendVarint(b, kvVersion, uint64(kv.Version))
	b = protofield.AppendBytes(b, kvValue, kv.Value)
	return protofield.AppendVarint(b, kvLease, uint64(kv.Lease))
}

// eventType is mvccpb.Event_EventType's number: PUT is 0, DELETE 1.
func eventType(e *mvcc.Event) uint64 {
	if e.Type == mvcc.EventDelete {
		return 1
	}
	return 0
}

func (w *wireWatch) size() int {
	r := w.resp
	n := protofield.SizeMessage(wrHeader, headerSize(&w.hdr)) +
		protofield.SizeVarint(wrWatchID, uint64(r.WatchID)) +
		protofield.SizeVarint(wrCanceled, protofield.Bool(r.Canceled)) +
		protofield.SizeVarint(wrCompactRevision, uint64(r.CompactRev)) +
		protofield.SizeBytes(wrCancelReason, len(w.reason))
	return n + len(w.cache.encoded(r.Events))
}

// appendTo appends the WatchResponse in proto.Marshal's field order.
func (w *wireWatch) appendTo(b []byte) []byte {
	r := w.resp
	b = appendHeader(b, wrHeader, &w.hdr)
	b = protofield.AppendVarint(b, wrWatchID, uint64(r.WatchID))
	b = protofield.AppendVarint(b, wrCanceled, protofield.Bool(r.Canceled))
	b = protofield.AppendVarint(b, wrCompactRevision, uint64(r.CompactRev))
	if w.reason != "" {
		b = protowire.AppendTag(b, wrCancelReason, protowire.BytesType)
		b = protowire.AppendString(b, w.reason)
	}
	return append(b, w.cache.encoded(r.Events)...)
}

func appendEvents(b []byte, evs []mvcc.Event) []byte {
	for i := range evs {
		e := &evs[i]
		kvs := kvSize(&e.KV)
		n := protofield.SizeVarint(evType, eventType(e)) + protofield.SizeMessage(evKV, kvs)
		prevs := 0
		if e.PrevKV != nil {
			prevs = kvSize(e.PrevKV)
			n += protofield.SizeMessage(evPrevKV, prevs)
		}
		b = protofield.AppendMessageHead(b, wrEvents, n)
		b = protofield.AppendVarint(b, evType, eventType(e))
		b = protofield.AppendMessageHead(b, evKV, kvs)
		b = appendKV(b, &e.KV)
		if e.PrevKV != nil {
			b = protofield.AppendMessageHead(b, evPrevKV, prevs)
			b = appendKV(b, e.PrevKV)
		}
	}
	return b
}

func (w *wireWatch) marshal() mem.BufferSlice {
	if w.cache == nil {
		w.cache = new(eventCache)
	}
	defer w.cache.trim()
	return marshalWire(w)
}

// wireMessage is a response encoded by hand: size is the length of what
// appendTo appends.
type wireMessage interface {
	size() int
	appendTo(b []byte) []byte
}

// marshalWire encodes w into a buffer gRPC frees once it is written, pooled
// as the proto codec's are.
func marshalWire(w wireMessage) mem.BufferSlice {
	n := w.size()
	if mem.IsBelowBufferPoolingThreshold(n) {
		return mem.BufferSlice{mem.SliceBuffer(w.appendTo(make([]byte, 0, n)))}
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	*buf = w.appendTo((*buf)[:0])
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}
}

// codec is gRPC's proto codec, except that it encodes the hand-written
// responses (wireWatch, and kvwire.go's) itself.
type codec struct{ encoding.CodecV2 }

func newCodec() codec { return codec{encoding.GetCodecV2("proto")} }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch w := v.(type) {
	case *wireWatch:
		return w.marshal(), nil
	case wireMessage:
		return marshalWire(w), nil
	}
	return c.CodecV2.Marshal(v)
}
