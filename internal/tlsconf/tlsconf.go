package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

var (
	// ErrNoKeyPair means a certificate file was given without a key file or
	// the other way round, or neither where one is needed.
	ErrNoKeyPair = errors.New("tlsconf: a certificate file and a key file must be given together")
	// ErrReadFile wraps the error of reading one of the files.
	ErrReadFile = errors.New("tlsconf: cannot read file")
	// ErrNoPEM means a file holds no PEM block of the kind expected there.
	ErrNoPEM = errors.New("tlsconf: no PEM data")
	// ErrBadCert means a CERTIFICATE block does not parse.
	ErrBadCert = errors.New("tlsconf: bad certificate")
	// ErrBadKey means the private key does not parse.
	ErrBadKey = errors.New("tlsconf: bad private key")
	// ErrKeyMismatch means the private key is not the certificate's.
	ErrKeyMismatch = errors.New("tlsconf: private key does not match the certificate")
	// ErrNoCACert means the trusted CA file holds no certificate.
	ErrNoCACert = errors.New("tlsconf: no certificate in the trusted CA file")
	// ErrValidity means a self-signed certificate was asked for with a
	// validity of zero years.
	ErrValidity = errors.New("tlsconf: self-signed certificate validity must be at least 1 year")
)

// Config is the TLS material of one side of a member: what it serves
// clients (or peers) with and whom it trusts.
type Config struct {
	// CertFile and KeyFile are PEM files: the certificate (its chain may
	// follow it) and its private key (PKCS#8, PKCS#1 or SEC 1 EC). The
	// certificate is what the listener presents and, on the peer side, what
	// the member presents as a client when it dials other members.
	CertFile, KeyFile string
	// TrustedCAFile is a PEM file of CA certificates. A listener verifies
	// client certificates against it, and requires one when it is set (as
	// etcd does); a dialer verifies servers against it. Empty means the
	// system's roots.
	TrustedCAFile string
	// ClientCertAuth makes a listener require and verify a client
	// certificate even without TrustedCAFile (against the system roots).
	ClientCertAuth bool
	// SkipVerify makes a dialer accept any server certificate. SelfCert sets
	// it: there is no CA to verify a self-signed certificate with.
	SkipVerify bool
}

// Empty reports whether c names no certificate or key (TLS material not
// given).
func (c Config) Empty() bool { return c.CertFile == "" && c.KeyFile == "" }

// Validate checks the combination of fields without reading any file.
func (c Config) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%w (certificate %q, key %q)", ErrNoKeyPair, c.CertFile, c.KeyFile)
	}
	return nil
}

// Server returns the listener side: the certificate to present and, when
// TrustedCAFile or ClientCertAuth is set, the client certificates to
// require. It reads and checks every file. NextProtos is left empty for
// the caller, who knows what the port speaks.
func (c Config) Server() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Empty() {
		return nil, ErrNoKeyPair
	}
	cert, err := LoadKeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
	}
	if c.TrustedCAFile != "" {
		pool, err := LoadCAPool(c.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
	}
	if c.TrustedCAFile != "" || c.ClientCertAuth {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Client returns the dialer side: servers are verified against
// TrustedCAFile (the system roots when empty) unless SkipVerify, and the
// certificate, when given, is always offered as the client certificate.
// It reads and checks every file. The caller sets ServerName when it dials
// by name.
func (c Config) Client() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.SkipVerify}
	if !c.Empty() {
		cert, err := LoadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
		// Offer the certificate whatever CAs the server names, as etcd
		// does: Go's default would send none to a server naming other CAs,
		// and the refusal would then read "certificate required" instead
		// of pointing at the certificate.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	if c.TrustedCAFile != "" {
		pool, err := LoadCAPool(c.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func readFile(role, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %w", ErrReadFile, role, err)
	}
	return b, nil
}

// LoadKeyPair reads a PEM certificate (chain) and its private key and checks
// that they belong together. Its errors say which file is at fault.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readFile("certificate", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readFile("key", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return tls.Certificate{}, fmt.Errorf("%w: no CERTIFICATE block in certificate file %s", ErrNoPEM, certFile)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w in %s: %w", ErrBadCert, certFile, err)
	}
	var keyDER []byte
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY") {
			keyDER = b.Bytes
			break
		}
	}
	if keyDER == nil {
		return tls.Certificate{}, fmt.Errorf("%w: no PRIVATE KEY block in key file %s", ErrNoPEM, keyFile)
	}
	key, err := parseKey(keyDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w in %s: %w", ErrBadKey, keyFile, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("%w: key file %s, certificate file %s", ErrKeyMismatch, keyFile, certFile)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}

// parseKey accepts the encodings Go's tls.X509KeyPair does.
func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("unsupported PKCS#8 key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, PKCS#1 or SEC 1 EC private key")
}

// LoadCAPool reads a PEM file of CA certificates. A file without any
// certificate is an error (etcd's behaviour would be to trust nothing, which
// fails every handshake later and more obscurely).
func LoadCAPool(path string) (*x509.CertPool, error) {
	b, err := readFile("trusted CA", path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w in trusted CA file %s: %w", ErrBadCert, path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoCACert, path)
	}
	return pool, nil
}
