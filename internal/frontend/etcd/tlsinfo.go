package etcd

// TLS on the client port and the identity of a client certificate.
//
// The client port is split between gRPC and HTTP by sniffing the first
// bytes of each connection (package admin, PortMux), which needs plaintext:
// so TLS is terminated by a tls.NewListener under the mux, and by the time
// gRPC sees a connection its handshake is over. grpc's own TLS credentials
// would try to handshake again; TLSInfoCreds instead reports the state of
// the handshake already done, so handlers find the verified client
// certificate in peer.FromContext(ctx).AuthInfo exactly as they would
// behind credentials.NewTLS.

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// maxUnwrap bounds the walk through wrapping connections (the mux's
// prefix conn, then the tls.Conn); a cycle must not hang a handshake.
const maxUnwrap = 8

// TLSInfoCreds returns server transport credentials for a gRPC server whose
// connections come out of a PortMux. For a connection that is TLS
// underneath, it completes the handshake if the mux has not (the mux reads
// first, so it normally has) and returns the connection unchanged with
// credentials.TLSInfo carrying that handshake's state, at security level
// PrivacyAndIntegrity. For a plaintext connection it returns the
// connection with an AuthInfo of security level NoSecurity.
//
// One set of credentials serves both kinds so that a member with plain and
// TLS client listeners (--listen-client-urls http://..,https://..) runs a
// single gRPC server: grpc.Server takes one Creds, and two servers would
// double every registered service and its state for no gain. What a
// connection is, is read from the connection itself, never guessed from the
// port it came in on.
func TLSInfoCreds() credentials.TransportCredentials { return tlsInfoCreds{identity: true} }

// TLSInfoCredsWithoutIdentity is TLSInfoCreds for a member without
// --client-cert-auth: the TLSInfo it reports carries no verified chains, so
// ClientCertCN finds no user. etcd verifies client certificates as soon as
// --trusted-ca-file is given, but lets their CN act as the user only with
// --client-cert-auth.
func TLSInfoCredsWithoutIdentity() credentials.TransportCredentials {
	return tlsInfoCreds{identity: false}
}

type tlsInfoCreds struct {
	// identity: report the verified chains (hence the client's CN).
	identity bool
}

// plainInfo is the AuthInfo of a plaintext connection (grpc's insecure
// credentials have an unexported one).
type plainInfo struct{ credentials.CommonAuthInfo }

func (plainInfo) AuthType() string { return "insecure" }

var errClientSide = errors.New("etcd: TLSInfoCreds are server credentials only")

func (c tlsInfoCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc := underlyingTLS(conn)
	if tc == nil {
		return conn, plainInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
	}
	// grpc has set a deadline on conn for the handshake; it applies to the
	// tls.Conn underneath as well. A completed handshake returns at once.
	if err := tc.Handshake(); err != nil {
		return nil, nil, err
	}
	info := credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}
	if !c.identity {
		info.State.VerifiedChains = nil
	}
	return conn, info, nil
}

func (tlsInfoCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errClientSide
}

func (tlsInfoCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c tlsInfoCreds) Clone() credentials.TransportCredentials { return c }

// OverrideServerName is part of the interface; a server has no name to
// override.
func (tlsInfoCreds) OverrideServerName(string) error { return nil }

// underlyingTLS finds the *tls.Conn under conn, following NetConn() through
// wrappers such as the mux's prefix conn; nil when there is none.
func underlyingTLS(conn net.Conn) *tls.Conn {
	for range maxUnwrap {
		if tc, ok := conn.(*tls.Conn); ok {
			return tc
		}
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		conn = w.NetConn()
	}
	return nil
}

// ClientCertCN returns the common name of the client certificate that
// authenticated the call's connection: the leaf of the first verified
// chain, as etcd takes it for --client-cert-auth. ok is false for a
// plaintext connection, a TLS connection without a verified client
// certificate (none required, or verification off) and an empty CN.
func ClientCertCN(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p == nil {
		return "", false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", false
	}
	for _, chain := range info.State.VerifiedChains {
		if len(chain) == 0 {
			continue
		}
		cn := chain[0].Subject.CommonName
		return cn, cn != ""
	}
	return "", false
}
