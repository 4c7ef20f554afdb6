package auth_test

import (
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/concord-db/concord/internal/auth"
)

// TestErrorTextsMatchEtcd pins every sentinel the etcd front-end maps to its
// rpctypes twin. Only this test imports etcd: package auth itself does not
// (see TestNoForbiddenImports).
func TestErrorTextsMatchEtcd(t *testing.T) {
	pairs := []struct {
		ours, etcd error
	}{
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
	for _, p := range pairs {
		if got, want := p.ours.Error(), rpctypes.ErrorDesc(p.etcd); got != want {
			t.Errorf("error text %q, etcd's is %q", got, want)
		}
	}
}
