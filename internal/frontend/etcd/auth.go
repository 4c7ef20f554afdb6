package etcd

// etcd's Auth service, and who is asking: every request's token (gRPC
// metadata "token", as clientv3 sends it) or, failing that, the CN of a
// verified client certificate, resolved once per call by an interceptor and
// handed to the server in the context. The decisions are the server's and
// package auth's; this file only translates.

import (
	"context"

	"go.etcd.io/etcd/api/v3/authpb"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/concord-db/concord/internal/auth"
	"github.com/concord-db/concord/internal/command"
	"github.com/concord-db/concord/internal/server"
)

// authenticateMethod is exempt from token resolution: a client whose token
// expired logs in again on the same connection, still sending the old one.
const authenticateMethod = "/etcdserverpb.Auth/Authenticate"

// tokenFromContext returns the token the client sent, if any.
func tokenFromContext(ctx context.Context) (string, bool) {
	for _, key := range []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger} {
		if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 && v[0] != "" {
			return v[0], true
		}
	}
	return "", false
}

// withSubject resolves who makes the call into ctx. A token that does not
// resolve fails the call; no token and no client certificate leave an empty
// subject, which only calls needing no identity accept. With auth off here,
// tokens are ignored (as etcd does), but a certificate's CN is still
// recorded: this member may not have applied an AuthEnable that a write
// will meet at apply, and the write must then carry who sent it.
func withSubject(ctx context.Context, s *server.Server) (context.Context, error) {
	if s.AuthEnabled() {
		if tok, ok := tokenFromContext(ctx); ok {
			sub, err := s.SubjectFromToken(ctx, tok)
			if err != nil {
				return nil, toGRPC(err)
			}
			return server.WithSubject(ctx, sub), nil
		}
	}
	if cn, ok := ClientCertCN(ctx); ok {
		return server.WithSubject(ctx, auth.Subject{User: cn, FromCert: true}), nil
	}
	return ctx, nil
}

// subjectStream overrides a stream's context.
type subjectStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s subjectStream) Context() context.Context { return s.ctx }

type authService struct {
	pb.UnimplementedAuthServer
	s *server.Server
}

func (a *authService) AuthEnable(ctx context.Context, _ *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	h, err := a.s.AuthEnable(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthEnableResponse{Header: header(h)}, nil
}

func (a *authService) AuthDisable(ctx context.Context, _ *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	h, err := a.s.AuthDisable(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthDisableResponse{Header: header(h)}, nil
}

func (a *authService) AuthStatus(ctx context.Context, _ *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	enabled, rev, h, err := a.s.AuthStatus(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthStatusResponse{Header: header(h), Enabled: enabled, AuthRevision: rev}, nil
}

func (a *authService) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	tok, h, err := a.s.Authenticate(ctx, r.Name, r.Password)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthenticateResponse{Header: header(h), Token: tok}, nil
}

func (a *authService) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	noPassword := r.Options != nil && r.Options.NoPassword
	h, err := a.s.UserAdd(ctx, r.Name, r.Password, noPassword)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserAddResponse{Header: header(h)}, nil
}

func (a *authService) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	u, h, err := a.s.UserGet(ctx, r.Name)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserGetResponse{Header: header(h), Roles: u.Roles}, nil
}

func (a *authService) UserList(ctx context.Context, _ *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	users, h, err := a.s.UserList(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserListResponse{Header: header(h), Users: users}, nil
}

func (a *authService) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	h, err := a.s.UserDelete(ctx, r.Name)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserDeleteResponse{Header: header(h)}, nil
}

func (a *authService) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	h, err := a.s.UserChangePassword(ctx, r.Name, r.Password)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserChangePasswordResponse{Header: header(h)}, nil
}

func (a *authService) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	h, err := a.s.UserGrantRole(ctx, r.User, r.Role)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserGrantRoleResponse{Header: header(h)}, nil
}

func (a *authService) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	h, err := a.s.UserRevokeRole(ctx, r.Name, r.Role)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthUserRevokeRoleResponse{Header: header(h)}, nil
}

func (a *authService) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	h, err := a.s.RoleAdd(ctx, r.Name)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleAddResponse{Header: header(h)}, nil
}

func (a *authService) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	role, h, err := a.s.RoleGet(ctx, r.Role)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.AuthRoleGetResponse{Header: header(h)}
	for _, p := range role.Perms {
		out.Perm = append(out.Perm, &authpb.Permission{PermType: authpb.Permission_Type(p.Type), Key: p.Key, RangeEnd: p.RangeEnd})
	}
	return out, nil
}

func (a *authService) RoleList(ctx context.Context, _ *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	roles, h, err := a.s.RoleList(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleListResponse{Header: header(h), Roles: roles}, nil
}

func (a *authService) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	h, err := a.s.RoleDelete(ctx, r.Role)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleDeleteResponse{Header: header(h)}, nil
}

func (a *authService) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	if r.Perm == nil {
		return nil, rpctypes.ErrGRPCPermissionNotGiven
	}
	p := &command.Permission{PermType: command.Permission_Type(r.Perm.PermType), Key: r.Perm.Key, RangeEnd: r.Perm.RangeEnd}
	h, err := a.s.RoleGrantPermission(ctx, r.Name, p)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleGrantPermissionResponse{Header: header(h)}, nil
}

func (a *authService) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	h, err := a.s.RoleRevokePermission(ctx, r.Role, r.Key, r.RangeEnd)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.AuthRoleRevokePermissionResponse{Header: header(h)}, nil
}
