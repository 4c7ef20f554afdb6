package transport

import "errors"

var (
	// ErrInvalidConfig wraps every error returned by Config.Validate.
	ErrInvalidConfig = errors.New("transport: invalid config")
	// ErrRefused means the remote member answered the handshake with a
	// refusal; the wrapping error carries its reason.
	ErrRefused = errors.New("transport: handshake refused")
	// ErrBadHandshake means the bytes received where a handshake was
	// expected are not one this package understands.
	ErrBadHandshake = errors.New("transport: bad handshake")
	// ErrFrameTooLarge means a frame's length prefix exceeds the cap.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrBadFrame means a frame could not be decoded or does not belong on
	// the stream it arrived on.
	ErrBadFrame = errors.New("transport: bad frame")
	// ErrSnapshotRejected means the receiver did not acknowledge a snapshot.
	ErrSnapshotRejected = errors.New("transport: snapshot rejected")
)
