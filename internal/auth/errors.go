package auth

import "errors"

// Errors that reach etcd clients carry etcd's exact rpctypes descriptions, so
// the etcd front-end can map each one to its gRPC status one to one and
// clients that compare messages (clientv3's rpctypes.Error) recognize them.
var (
	ErrRootUserNotExist     = errors.New("etcdserver: root user does not exist")
	ErrRootRoleNotExist     = errors.New("etcdserver: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("etcdserver: user name already exists")
	ErrUserEmpty            = errors.New("etcdserver: user name is empty")
	ErrUserNotFound         = errors.New("etcdserver: user name not found")
	ErrRoleAlreadyExist     = errors.New("etcdserver: role name already exists")
	ErrRoleNotFound         = errors.New("etcdserver: role name not found")
	ErrRoleEmpty            = errors.New("etcdserver: role name is empty")
	ErrAuthFailed           = errors.New("etcdserver: authentication failed, invalid user ID or password")
	ErrPermissionNotGiven   = errors.New("etcdserver: permission not given")
	ErrPermissionDenied     = errors.New("etcdserver: permission denied")
	ErrRoleNotGranted       = errors.New("etcdserver: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("etcdserver: permission is not granted to the role")
	ErrAuthNotEnabled       = errors.New("etcdserver: authentication is not enabled")
	ErrInvalidAuthToken     = errors.New("etcdserver: invalid auth token")
	ErrInvalidAuthMgmt      = errors.New("etcdserver: invalid auth management")
	ErrAuthOldRevision      = errors.New("etcdserver: revision of auth store is old")
)

// Errors etcd has no rpctypes entry for. etcd's gRPC layer sends an unmapped
// error as codes.Unknown with err.Error() as the description, so these keep
// etcd server/auth's own texts: a front-end that does the same stays exact.
var (
	// ErrNoPasswordUser is what etcd answers when a user created with
	// --no-password tries to authenticate with a password.
	ErrNoPasswordUser = errors.New("auth: authentication failed, password was given for no password user")
	// ErrVerifyOnly is returned by JWT.Sign on a member configured with only
	// a public key.
	ErrVerifyOnly = errors.New("auth: token signing attempted with verify-only key")
	// ErrInvalidAuthOpts wraps every --auth-token parsing error.
	ErrInvalidAuthOpts = errors.New("auth: invalid auth options")
	// ErrInvalidAuthMethod is returned for an unknown or missing sign-method.
	ErrInvalidAuthMethod = errors.New("auth: invalid auth signature method")
	// ErrMissingKey is returned when a JWT configuration has no usable key.
	ErrMissingKey = errors.New("auth: missing key data")
	// ErrKeyMismatch is returned when pub-key is not the public half of
	// priv-key.
	ErrKeyMismatch = errors.New("auth: public and private keys don't match")
)

// ErrCorruptSnapshot is wrapped by every DecodeStore error.
var ErrCorruptSnapshot = errors.New("auth: corrupt snapshot")
