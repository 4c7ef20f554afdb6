// Package tlsconf turns a member's TLS flags into *tls.Config values and
// makes the self-signed certificates of auto-TLS.
//
// It owns:
//   - Config, the TLS material of one side of a member (clients or peers),
//     with etcd's meaning: a certificate and key, an optional trusted CA
//     file, and client-certificate authentication (etcd: --cert-file,
//     --key-file, --trusted-ca-file, --client-cert-auth and their --peer-
//     twins). Config.Server builds the listener's side, Config.Client the
//     dialer's side. As in etcd, a trusted CA file alone already makes the
//     server require and verify client certificates.
//   - SelfCert, etcd's auto-TLS (--auto-tls, --peer-auto-tls): an ECDSA key
//     and a self-signed certificate for the listen hosts, written once under
//     a directory (etcd: <data-dir>/fixtures/client and .../peer) and reused
//     on later starts. A Config from SelfCert has SkipVerify set: a dialer
//     cannot verify a certificate nobody signed, so, like etcd, it encrypts
//     without authenticating.
//
// Every file is read and checked when a tls.Config is built, so a missing,
// unreadable or malformed file, a key that does not belong to its
// certificate, or a CA file with no certificate is an error at start, not
// at the first handshake. Certificates are not reloaded afterwards.
// Every tls.Config built here has TLS 1.2 as its minimum version.
//
// What it must never do: import gRPC, net/http or a front-end (it is plain
// crypto/tls and crypto/x509, usable by the transport and the CLI alike),
// log, or read a clock of its own (SelfCert takes the time).
package tlsconf
