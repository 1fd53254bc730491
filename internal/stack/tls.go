package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CACertFile is the stack's PostgreSQL server certificate (self-signed, for
// 127.0.0.1 and localhost), to pass as sslrootcert: the local server accepts
// TLS, so `sslmode=verify-full&sslrootcert=<Dir>/pg-ca.crt` exercises the
// same path as a production database that requires it. The stack's own URLs
// keep sslmode=disable.
func (s *Stack) CACertFile() string { return filepath.Join(s.Dir, caCertName) }

const caCertName = "pg-ca.crt"

// writeServerCert makes a fresh self-signed certificate and key for the
// cluster in dataDir (server.crt, server.key: PostgreSQL's defaults), owned by
// the server's user, and a readable copy of the certificate in dir.
func writeServerCert(r *pgRunner, dir, dataDir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("stack: TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return fmt.Errorf("stack: TLS serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ferry local stack"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("stack: TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("stack: TLS key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
		own  bool
	}{
		{filepath.Join(dataDir, "server.crt"), certPEM, 0o600, true},
		{filepath.Join(dataDir, "server.key"), keyPEM, 0o600, true}, // PostgreSQL refuses a key others can read
		{filepath.Join(dir, caCertName), certPEM, 0o644, false},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if err := os.Chmod(f.path, f.mode); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if f.own {
			if err := r.own(f.path); err != nil {
				return err
			}
		}
	}
	return nil
}
