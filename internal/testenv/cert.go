package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a self-signed certificate for localhost, 127.0.0.1 and ::1. It is its own CA,
// so clients verify it with Pool (or CertFile as sslrootcert).
type Cert struct {
	CertFile string // PEM certificate
	KeyFile  string // PEM private key, mode 0600
	CertPEM  []byte
	KeyPEM   []byte
	Pool     *x509.CertPool // contains the certificate
}

// TLSConfig returns a server configuration presenting the certificate.
func (c *Cert) TLSConfig() *tls.Config {
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		panic(fmt.Sprintf("testenv: own certificate does not load: %v", err)) // cannot happen
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// ClientTLSConfig returns a client configuration that trusts the certificate and
// verifies the server name "localhost" (the certificate also covers 127.0.0.1 and ::1).
func (c *Cert) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// SelfSignedCert generates a certificate and writes server.crt and server.key into dir.
func SelfSignedCert(t testing.TB, dir string) *Cert {
	t.Helper()
	c, err := newCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newCert generates a certificate and writes it into dir, owned by o.
func newCert(dir string, o *owner) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testenv: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("testenv: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"testenv"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testenv: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testenv: marshal key: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testenv: parse certificate: %w", err)
	}
	c := &Cert{
		CertFile: filepath.Join(dir, "server.crt"),
		KeyFile:  filepath.Join(dir, "server.key"),
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		Pool:     x509.NewCertPool(),
	}
	c.Pool.AddCert(leaf)
	if err := writeFile(c.CertFile, c.CertPEM, 0o644, o); err != nil {
		return nil, err
	}
	if err := writeFile(c.KeyFile, c.KeyPEM, 0o600, o); err != nil {
		return nil, err
	}
	return c, nil
}
