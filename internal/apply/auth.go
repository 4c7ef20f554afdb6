package apply

import (
	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/command"
)

// Auth state and permission checks. The auth store is replicated state like
// the lease table: auth commands change it in log order, and every keyspace
// write is checked against it at its place in the log, so a permission
// revoked before a write commits is honoured on every member alike (etcd's
// authApplierV3). Reads are checked by the server before it serves them.

// Auth returns the replicated auth store. Callers may read and decide with it
// from any goroutine but must never change it: every change goes through
// Apply.
func (a *Applier) Auth() *auth.Store { return a.auth }

// SubjectOf returns who proposed a command.
func SubjectOf(ai *command.AuthInfo) auth.Subject {
	return auth.Subject{User: ai.GetUsername(), Revision: ai.GetRevision(), FromCert: ai.GetFromCert()}
}

// Authorize is the permission check of cmd (against cmd.Auth) by the auth
// store's current state; nil when auth is off or the proposer may run cmd.
// The applier runs it before every command; the server runs it before
// proposing, so a refused write costs no log entry. Safe from any goroutine.
func (a *Applier) Authorize(cmd *command.Command) error {
	if !a.auth.Enabled() {
		return nil
	}
	sub := SubjectOf(cmd.GetAuth())
	switch op := cmd.GetOp().(type) {
	case *command.Command_Put:
		if err := PermitPut(a.auth, sub, op.Put); err != nil {
			return err
		}
		return a.permitLeaseKeys(sub, op.Put.GetLease())
	case *command.Command_DeleteRange:
		return PermitDeleteRange(a.auth, sub, op.DeleteRange)
	case *command.Command_Txn:
		return PermitTxn(a.auth, sub, op.Txn)
	case *command.Command_LeaseRevoke:
		return a.permitLeaseKeys(sub, op.LeaseRevoke.GetId())
	case *command.Command_Compaction, // root's in etcd 3.6
		*command.Command_AuthEnable, *command.Command_AuthDisable,
		*command.Command_AuthUserAdd, *command.Command_AuthUserDelete,
		*command.Command_AuthUserChangePassword, *command.Command_AuthUserGrantRole,
		*command.Command_AuthUserRevokeRole, *command.Command_AuthRoleAdd,
		*command.Command_AuthRoleDelete, *command.Command_AuthRoleGrantPermission,
		*command.Command_AuthRoleRevokePermission:
		return a.auth.CheckAdmin(sub)
	}
	return nil
}

// permitLeaseKeys requires WRITE on every key attached to lease id: who
// revokes a lease deletes its keys, and who attaches a key to a lease could
// otherwise delete keys they may not write by revoking it (etcd's
// checkLeasePuts). An unknown lease passes; the op itself reports it.
func (a *Applier) permitLeaseKeys(sub auth.Subject, id int64) error {
	if id == 0 || a.auth.CheckAdmin(sub) == nil {
		return nil
	}
	l, ok := a.leaseTable.Get(id, true)
	if !ok {
		return nil
	}
	for _, k := range l.Keys {
		if err := a.auth.Check(sub, auth.ActionWrite, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// PermitRange is the permission a range needs: READ on its keys.
func PermitRange(s *auth.Store, sub auth.Subject, r *command.RangeRequest) error {
	return s.Check(sub, auth.ActionRead, r.GetKey(), r.GetRangeEnd())
}

// PermitPut needs WRITE on the key, and READ too when the previous value is
// returned.
func PermitPut(s *auth.Store, sub auth.Subject, p *command.PutRequest) error {
	if err := s.Check(sub, auth.ActionWrite, p.GetKey(), nil); err != nil {
		return err
	}
	if p.GetPrevKv() {
		return s.Check(sub, auth.ActionRead, p.GetKey(), nil)
	}
	return nil
}

// PermitDeleteRange needs WRITE on the range, and READ too when the deleted
// values are returned.
func PermitDeleteRange(s *auth.Store, sub auth.Subject, d *command.DeleteRangeRequest) error {
	if err := s.Check(sub, auth.ActionWrite, d.GetKey(), d.GetRangeEnd()); err != nil {
		return err
	}
	if d.GetPrevKv() {
		return s.Check(sub, auth.ActionRead, d.GetKey(), d.GetRangeEnd())
	}
	return nil
}

// PermitTxn needs READ on every compared key and the permission of every op
// in both branches, nested txns included: which branch runs must not decide
// whether the request was allowed (etcd's CheckTxnAuth).
func PermitTxn(s *auth.Store, sub auth.Subject, t *command.TxnRequest) error {
	for _, c := range t.GetCompare() {
		if err := s.Check(sub, auth.ActionRead, c.GetKey(), c.GetRangeEnd()); err != nil {
			return err
		}
	}
	for _, branch := range [][]*command.RequestOp{t.GetSuccess(), t.GetFailure()} {
		for _, op := range branch {
			var err error
			switch r := op.GetRequest().(type) {
			case *command.RequestOp_RequestRange:
				err = PermitRange(s, sub, r.RequestRange)
			case *command.RequestOp_RequestPut:
				err = PermitPut(s, sub, r.RequestPut)
			case *command.RequestOp_RequestDeleteRange:
				err = PermitDeleteRange(s, sub, r.RequestDeleteRange)
			case *command.RequestOp_RequestTxn:
				err = PermitTxn(s, sub, r.RequestTxn)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// applyAuth applies one auth command. Every answer is deterministic: a
// rejection (auth's sentinels) or an AuthResponse with the auth revision
// after the change. Auth changes do not move the store revision.
func (a *Applier) applyAuth(cmd *command.Command) Result {
	var err error
	var res Result
	switch op := cmd.GetOp().(type) {
	case *command.Command_AuthEnable:
		err = a.auth.Enable()
		if err == nil {
			a.logger.Info("authentication enabled", "auth-revision", a.auth.Revision())
		}
	case *command.Command_AuthDisable:
		a.auth.Disable()
		a.logger.Info("authentication disabled", "auth-revision", a.auth.Revision())
	case *command.Command_Authenticate:
		return a.applyAuthenticate(op.Authenticate)
	case *command.Command_AuthUserAdd:
		r := op.AuthUserAdd
		err = a.auth.UserAdd(r.GetName(), r.GetHashedPassword(), r.GetNoPassword())
	case *command.Command_AuthUserDelete:
		err = a.auth.UserDelete(op.AuthUserDelete.GetName())
		res.TokensRevoked = op.AuthUserDelete.GetName()
	case *command.Command_AuthUserChangePassword:
		r := op.AuthUserChangePassword
		err = a.auth.UserChangePassword(r.GetName(), r.GetHashedPassword())
		res.TokensRevoked = r.GetName()
	case *command.Command_AuthUserGrantRole:
		err = a.auth.UserGrantRole(op.AuthUserGrantRole.GetUser(), op.AuthUserGrantRole.GetRole())
	case *command.Command_AuthUserRevokeRole:
		err = a.auth.UserRevokeRole(op.AuthUserRevokeRole.GetName(), op.AuthUserRevokeRole.GetRole())
	case *command.Command_AuthRoleAdd:
		err = a.auth.RoleAdd(op.AuthRoleAdd.GetName())
	case *command.Command_AuthRoleDelete:
		err = a.auth.RoleDelete(op.AuthRoleDelete.GetRole())
	case *command.Command_AuthRoleGrantPermission:
		r := op.AuthRoleGrantPermission
		p := r.GetPerm()
		err = a.auth.RoleGrantPermission(r.GetName(), auth.Permission{
			Type: auth.PermType(p.GetPermType()), Key: p.GetKey(), RangeEnd: p.GetRangeEnd(),
		})
	case *command.Command_AuthRoleRevokePermission:
		r := op.AuthRoleRevokePermission
		err = a.auth.RoleRevokePermission(r.GetRole(), r.GetKey(), r.GetRangeEnd())
	}
	res.Rev = a.store.Rev()
	if err != nil {
		return Result{Rev: res.Rev, Err: err}
	}
	res.Resp = &command.AuthResponse{Revision: a.auth.Revision()}
	return res
}

// applyAuthenticate confirms, at this log position, that the user whose
// password the proposer checked may still log in, and answers with the auth
// revision its token is issued at (etcd: the applied Authenticate).
func (a *Applier) applyAuthenticate(r *command.AuthenticateRequest) Result {
	rev := a.store.Rev()
	if !a.auth.Enabled() {
		return Result{Rev: rev, Err: auth.ErrAuthNotEnabled}
	}
	u, err := a.auth.User(r.GetName())
	if err != nil || (u.NoPassword && !r.GetSystem()) {
		return Result{Rev: rev, Err: auth.ErrAuthFailed}
	}
	return Result{Rev: rev, Resp: &command.AuthenticateResponse{
		Name: r.GetName(), SimpleToken: r.GetSimpleToken(), Revision: a.auth.Revision(),
	}}
}

// isAuthOp reports whether cmd is an auth command.
func isAuthOp(cmd *command.Command) bool {
	switch cmd.GetOp().(type) {
	case *command.Command_AuthEnable, *command.Command_AuthDisable, *command.Command_Authenticate,
		*command.Command_AuthUserAdd, *command.Command_AuthUserDelete,
		*command.Command_AuthUserChangePassword, *command.Command_AuthUserGrantRole,
		*command.Command_AuthUserRevokeRole, *command.Command_AuthRoleAdd,
		*command.Command_AuthRoleDelete, *command.Command_AuthRoleGrantPermission,
		*command.Command_AuthRoleRevokePermission:
		return true
	}
	return false
}
