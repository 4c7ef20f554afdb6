package etcd

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/server"
)

// errorTable maps every domain error a request can return to etcd's gRPC
// error. An error missing here reaches the client as codes.Unknown, which is
// a bug: TestErrorTableCoversSentinels guards it.
var errorTable = []struct {
	domain error
	grpc   error
}{
	{apply.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{apply.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{apply.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
	{apply.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
	{apply.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{apply.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{apply.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{apply.ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
	{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
}

// toGRPC translates a domain error into the gRPC status an etcd server would
// return for it.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range errorTable {
		if errors.Is(err, e.domain) {
			return e.grpc
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, context.Canceled.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, context.DeadlineExceeded.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Unknown, err.Error())
}
