package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Self-signed files, named as etcd names them under <data-dir>/fixtures/*.
const (
	selfCertName = "cert.pem"
	selfKeyName  = "key.pem"
)

// SelfCert returns a Config with a self-signed certificate for hosts (each
// host or host:port; an IP becomes an IP SAN, anything else a DNS SAN),
// valid from now for validityYears years of 365 days, as etcd's auto-TLS
// does. The key is ECDSA on P-521, etcd's choice. The files are cert.pem
// and key.pem (mode 0600) in dir, which is created (0700) if needed; when
// both files already exist they are reused unchanged, so a member keeps its
// certificate across restarts (and a damaged pair is reported, not
// replaced). The certificate may serve and, on the peer side, authenticate
// as a client. The returned Config has SkipVerify set.
func SelfCert(dir string, hosts []string, validityYears uint, now time.Time) (Config, error) {
	if validityYears == 0 {
		return Config{}, ErrValidity
	}
	cfg := Config{
		CertFile:   filepath.Join(dir, selfCertName),
		KeyFile:    filepath.Join(dir, selfKeyName),
		SkipVerify: true,
	}
	certExists, err := exists(cfg.CertFile)
	if err != nil {
		return Config{}, err
	}
	keyExists, err := exists(cfg.KeyFile)
	if err != nil {
		return Config{}, err
	}
	if certExists && keyExists {
		return cfg, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Config{}, fmt.Errorf("tlsconf: create self-signed certificate directory: %w", err)
	}
	certPEM, keyPEM, err := selfSigned(hosts, validityYears, now)
	if err != nil {
		return Config{}, err
	}
	// The key first: a crash between the two writes leaves a key without a
	// certificate, which the next start regenerates.
	if err := writeFileAtomic(cfg.KeyFile, keyPEM, 0o600); err != nil {
		return Config{}, err
	}
	if err := writeFileAtomic(cfg.CertFile, certPEM, 0o644); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("%w (self-signed): %w", ErrReadFile, err)
}

// selfSigned makes the PEM certificate and key. It reads no clock; now is
// the start of validity.
func selfSigned(hosts []string, validityYears uint, now time.Time) (certPEM, keyPEM []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: serial number: %w", err)
	}
	tmpl := x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"concord"}},
		NotBefore:    now,
		NotAfter:     now.Add(time.Duration(validityYears) * 365 * 24 * time.Hour),
		// Self-signed, so it is its own CA; etcd marks it the same way.
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: generate key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// writeFileAtomic writes a temporary file, syncs it and renames it into
// place, so a crash never leaves a half-written certificate or key.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	return nil
}
