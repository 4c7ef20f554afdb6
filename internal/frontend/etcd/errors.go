package etcd

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concord-db/concord/internal/apply"
	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/mvcc"
	"github.com/concord-db/concord/internal/server"
	"github.com/concord-db/concord/internal/watch"
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
	{apply.ErrLeaseExist, rpctypes.ErrGRPCLeaseExist},
	{apply.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{apply.ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	{apply.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{apply.ErrCorrupt, rpctypes.ErrGRPCCorrupt},
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{server.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{server.ErrMemberExists, rpctypes.ErrGRPCMemberExist},
	{server.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{server.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{server.ErrMemberBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	{server.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{server.ErrNotEnoughStarted, rpctypes.ErrGRPCMemberNotEnoughStarted},
	{server.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{server.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{server.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{server.ErrBadLeaderTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	// etcd has no rpctypes error for it and sends its text with code
	// Unknown; Unavailable, like etcd's other timeouts, lets clients retry.
	{server.ErrLeaderTransferTimeout, status.Error(codes.Unavailable, "etcdserver: request timed out, leader transfer took too long")},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
	{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{auth.ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{auth.ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{auth.ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{auth.ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{auth.ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{auth.ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{auth.ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{auth.ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{auth.ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{auth.ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{auth.ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{auth.ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{auth.ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{auth.ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{auth.ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{auth.ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{auth.ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
}

// cancelReasons maps the errors of creating a watch to the cancel_reason etcd
// puts in its created-and-canceled reply (watch_id -1): mvcc's texts for its
// own rejections, the compacted error's text for a negative start revision.
// A missing entry is a bug: TestCancelReasons guards it.
var cancelReasons = []struct {
	domain error
	reason string
}{
	{watch.ErrNegativeStartRev, rpctypes.ErrCompacted.Error()},
	{watch.ErrDuplicateID, "mvcc: duplicate watch ID provided on the WatchStream"},
	{watch.ErrEmptyRange, "mvcc: watcher range is empty"},
	// etcd answers a watch on a closing stream with the empty-range error.
	{watch.ErrStreamClosed, "mvcc: watcher range is empty"},
}

func cancelReason(err error) string {
	for _, e := range cancelReasons {
		if errors.Is(err, e.domain) {
			return e.reason
		}
	}
	return err.Error()
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
