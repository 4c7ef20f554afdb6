package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultQueueSize        = 4096
	DefaultDialTimeout      = 2 * time.Second
	DefaultIOTimeout        = 10 * time.Second
	DefaultMinBackoff       = 50 * time.Millisecond
	DefaultMaxBackoff       = time.Second
	DefaultMaxMessageBytes  = 64 << 20
	DefaultMaxSnapshotBytes = 8 << 30

	// maxFrameLimit keeps a frame length representable in the 4-byte length
	// prefix with room to spare, and stops a misconfiguration from letting a
	// peer make us allocate gigabytes for one ordinary message.
	maxFrameLimit = 1 << 30
)

// Config configures a Transport. The zero value of every field except ID and
// ClusterID means "use the default".
type Config struct {
	// ID is this member's raft id. Required, non-zero.
	ID uint64
	// ClusterID identifies the cluster. Peers presenting another cluster id
	// are refused at handshake, and the refusal is logged on both sides.
	// Required, non-zero.
	ClusterID uint64
	// QueueSize is the per-peer queue of outbound messages (default 4096).
	// Send drops messages that do not fit.
	QueueSize int
	// DialTimeout bounds a dial plus its handshake, on both sides (default 2s).
	DialTimeout time.Duration
	// IOTimeout bounds each blocking network operation other than waiting on
	// an idle message stream: writing one batch of messages, writing or
	// reading one snapshot chunk, waiting for a snapshot's ack (default 10s).
	// A peer that cannot keep up with it is treated as broken.
	IOTimeout time.Duration
	// MinBackoff is the first reconnect delay (default 50ms); delays double
	// up to MaxBackoff. Each delay is jittered into [d/2, d).
	MinBackoff time.Duration
	// MaxBackoff caps the reconnect delay (default 1s).
	MaxBackoff time.Duration
	// MaxMessageBytes caps one ordinary message frame, in both directions
	// (default 64 MiB, at most 1 GiB). Snapshots travel on their own streams
	// and are capped by MaxSnapshotBytes instead.
	MaxMessageBytes int
	// MaxSnapshotBytes caps the snapshot data this member accepts
	// (default 8 GiB).
	MaxSnapshotBytes int64
	// TLS, when non-nil, makes every outbound peer connection (message,
	// snapshot and request streams) a TLS client with this configuration.
	// The listener given to Serve is wrapped by the caller.
	TLS *tls.Config
	// SnapshotData, when non-nil, supplies the data of a MsgSnap that
	// carries none: the raft core keeps only snapshot metadata in memory
	// and the data stays in the snapshot file until a peer needs it. It is
	// called on the snapshot's own sender goroutine, which reads the source
	// to io.EOF and closes it; an error, from the call or from a Read, fails
	// that send (raft retries later, with its newest snapshot).
	SnapshotData func(index, term uint64) (SnapshotSource, error)
	// Interceptor, when non-nil, judges every outbound message (MsgSnap
	// included) before it is queued: the fault plane's hook. See the
	// package doc's "Fault injection".
	Interceptor Interceptor
	// Rand supplies reconnect jitter. It is used under a lock, so it need not
	// be safe for concurrent use. Nil uses math/rand/v2's global source.
	Rand *rand.Rand
	// Logger receives structured logs. Nil discards them.
	Logger *slog.Logger
}

// Validate reports whether c can be used. Zero values are valid where a
// default exists.
func (c Config) Validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("ID must be non-zero"))
	}
	if c.ClusterID == 0 {
		errs = append(errs, errors.New("ClusterID must be non-zero"))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("QueueSize %d is negative", c.QueueSize))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout},
		{"IOTimeout", c.IOTimeout},
		{"MinBackoff", c.MinBackoff},
		{"MaxBackoff", c.MaxBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.name, d.v))
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("MinBackoff %v exceeds MaxBackoff %v", c.MinBackoff, c.MaxBackoff))
	}
	if c.MaxMessageBytes < 0 || c.MaxMessageBytes > maxFrameLimit {
		errs = append(errs, fmt.Errorf("MaxMessageBytes %d outside [0, %d]", c.MaxMessageBytes, maxFrameLimit))
	}
	if c.MaxSnapshotBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxSnapshotBytes %d is negative", c.MaxSnapshotBytes))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// withDefaults returns c with zero fields replaced by defaults. The minimum
// backoff is clamped to the maximum so that a caller setting only MaxBackoff
// below 50ms still gets a consistent pair.
func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = min(DefaultMinBackoff, c.MaxBackoff)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxSnapshotBytes == 0 {
		c.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SnapshotSource is the data of one snapshot as Config.SnapshotData
// supplies it: Size bytes, then io.EOF. A source that checks its data (a
// snapshot file's checksum) reports a failed check as the error of its last
// Read instead of io.EOF.
type SnapshotSource interface {
	io.ReadCloser
	Size() int64
}
