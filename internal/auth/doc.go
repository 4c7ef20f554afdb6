// Package auth is Concord's authorization core: the replicated auth state
// (users, roles, permissions, the enabled flag, the auth revision) with etcd
// v3's exact semantics, the permission decision, password hashing and
// checking, and the two token providers (simple and JWT).
//
// It speaks Concord's terms, not a wire protocol's: a Subject (who), a key
// range and an Action (read or write). The etcd front-end maps etcd's auth
// RPCs onto it one to one; later dialects (ZooKeeper ACLs, Consul tokens) can
// map onto the same decision.
//
// # What it owns
//
//   - Store: the auth state every member holds identically. Package apply
//     owns one and mutates it only while applying committed commands, in log
//     order; it rides in raft snapshots through AppendBinary / DecodeStore /
//     Replace.
//   - The decision: Check (may this subject read or write this range?),
//     CheckAdmin (does it hold role root?), CheckSubject (is there an
//     authenticated caller at all?).
//   - Passwords: HashPassword (bcrypt; the proposer hashes before proposing,
//     so the log never holds a plain password and apply never spends bcrypt
//     time) and Store.CheckPassword.
//   - Tokens: ParseTokenConfig (etcd's --auth-token), SimpleTokens and
//     NewSimpleToken, JWT.
//
// # What it must never do
//
// It imports no gRPC, no net/http, no go.etcd.io/etcd package and no other
// Concord package. Store never reads a clock, random numbers or
// configuration, and its outcome never depends on map order: equal command
// sequences give equal states and equal snapshot bytes on every member.
// Nothing here logs or returns a password, a hash or a token in an error.
//
// # Why hand-written
//
// etcd's server/auth is tied to its bbolt backend (every operation runs in a
// backend transaction), to gRPC (it reads tokens from gRPC metadata and peers
// from gRPC contexts) and to etcdserverpb request types. Concord keeps state
// in memory, applies through its own command envelope and serves several
// dialects, so it re-states the same semantics over plain Go values.
//
// # Semantics (etcd v3, server/auth/store.go and range_perm_cache.go)
//
// The auth revision starts at 1 and every successful mutation adds one.
// Rejections change nothing. Exceptions, as in etcd: Enable does not bump
// the revision (etcd's AuthEnable re-reads it; no token can exist while auth
// is off), and a grant of a role the user already holds is a no-op success.
// Disable bumps it.
//
// User "root" cannot be deleted, role "root" cannot be deleted, and root's
// role root cannot be revoked while auth is enabled (ErrInvalidAuthMgmt).
// Role "root" is implicit for grants (it need not be added) and reads as
// READWRITE on everything once added.
//
// A permission is a key interval: RangeEnd empty is the single key, "\x00"
// is every key from Key on, otherwise [Key, RangeEnd). Check needs the
// union of the user's permissions of the right kind (READ or READWRITE to
// read, WRITE or READWRITE to write) to cover the requested interval, with
// touching intervals merged. A request whose range end is not after its key
// selects no key and is checked as the single key Key (which is what etcd's
// interval tree answers).
//
// Token revisions: a Subject's Revision is compared with the store's; an
// older one is ErrAuthOldRevision and clients re-authenticate. etcd stamps
// simple-token and certificate identities with the store's current revision
// when it resolves them, so they never go stale; a server that wants exactly
// that for simple tokens sets Subject.Revision = Store.Revision() after
// SimpleTokens.Lookup (certificate subjects set FromCert instead). JWTs carry
// the revision they were issued at.
//
// # Concurrency
//
// Store: one RWMutex. Mutations (and Replace) take the write lock, readers
// and deciders the read lock; any goroutine may read while the applier
// writes, and each read sees every mutation whole. CheckPassword reads the
// hash under the read lock and runs bcrypt after releasing it.
// SimpleTokens: one mutex, no method blocks. JWT: immutable after NewJWT.
//
// # Snapshot encoding
//
// AppendBinary writes, and DecodeStore reads, exactly this (fixed-width
// integers big-endian; "str" and "bytes" are a uint32 length then that many
// bytes):
//
//	uint8   version, 1
//	uint8   enabled: 0 or 1
//	uint64  auth revision (>= 1)
//	uint32  number of users U
//	U times, strictly ascending by name (bytewise):
//	  str     name (non-empty)
//	  uint8   flags: bit 0 = no-password; other bits 0
//	  bytes   bcrypt hash (empty for a no-password user)
//	  uint32  number of roles R
//	  R times, strictly ascending: str role name (non-empty; "root" or a
//	          role listed below)
//	uint32  number of roles N
//	N times, strictly ascending by name:
//	  str     name (non-empty)
//	  uint32  number of permissions P
//	  P times, strictly ascending by (key, range end) bytewise:
//	    int32   type (etcd's authpb.Permission_Type: 0 READ, 1 WRITE,
//	            2 READWRITE; other values are kept, as etcd keeps them, and
//	            grant nothing)
//	    bytes   key (non-empty)
//	    bytes   range end (empty, "\x00", or greater than key)
//
// When enabled is 1, user "root" must exist and hold role "root". DecodeStore
// rejects anything else (truncation, bad order, duplicates, unknown flags or
// version, counts the remaining bytes cannot hold) with an error wrapping
// ErrCorruptSnapshot and returns the bytes after the encoding. The encoding
// is canonical: a decoded store encodes to the same bytes.
package auth
