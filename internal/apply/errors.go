package apply

import "errors"

// Deterministic rejections. The texts equal etcd's rpctypes messages so the
// etcd front-end maps each to its gRPC error one to one. Compaction and
// future-revision errors are mvcc.ErrCompacted and mvcc.ErrFutureRev.
var (
	ErrEmptyKey          = errors.New("etcdserver: key is not provided")
	ErrKeyNotFound       = errors.New("etcdserver: key not found")
	ErrValueProvided     = errors.New("etcdserver: value is provided")
	ErrLeaseProvided     = errors.New("etcdserver: lease is provided")
	ErrTooManyOps        = errors.New("etcdserver: too many operations in txn request")
	ErrDuplicateKey      = errors.New("etcdserver: duplicate key given in txn request")
	ErrLeaseNotFound     = errors.New("etcdserver: requested lease not found")
	ErrInvalidSortOption = errors.New("etcdserver: invalid sort option")
)

// Errors about the applier's input itself, not answers for clients.
var (
	// ErrNotReadOnly is returned by ReadTxn for a txn whose chosen branch writes.
	ErrNotReadOnly = errors.New("apply: txn is not read-only")
	// ErrUnknownVersion means a command envelope newer (or older) than this build.
	ErrUnknownVersion = errors.New("apply: unknown command version")
	// ErrUnknownOp means a command carrying no op this build knows.
	ErrUnknownOp = errors.New("apply: unknown command op")
	// ErrIndexGap means an entry skipped ahead of AppliedIndex+1.
	ErrIndexGap = errors.New("apply: entry index out of order")
	// ErrCorruptSnapshot means Restore was given bytes Snapshot did not produce.
	ErrCorruptSnapshot = errors.New("apply: corrupt snapshot")
)
