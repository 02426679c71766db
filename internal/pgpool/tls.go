package pgpool

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// TLSFiles are one side's client_tls_* or server_tls_* settings besides the sslmode,
// as pgbouncer.ini has them. ClientTLS and ServerTLS are built from them
// (BuildClientTLS, BuildServerTLS) at start, on RELOAD and when the admin console's
// SET changes one of them.
type TLSFiles struct {
	KeyFile   string // *_tls_key_file
	CertFile  string // *_tls_cert_file
	CAFile    string // *_tls_ca_file
	Protocols string // *_tls_protocols: secure, all, legacy, default, or tlsv1.0 ... tlsv1.3
	// Ciphers is *_tls_ciphers, shown by SHOW CONFIG; Go chooses the cipher suites.
	Ciphers string
}

// Classes of TLSError.
var (
	// ErrTLSFile: a key, certificate or CA file cannot be read or holds no usable
	// key or certificate.
	ErrTLSFile = errors.New("pgpool: unusable TLS file")
	// ErrTLSIncomplete: the settings do not make a usable configuration: the sslmode
	// needs a file that is not set, or the key does not belong to the certificate.
	ErrTLSIncomplete = errors.New("pgpool: incomplete TLS settings")
	// ErrTLSValue: an sslmode or protocols value pgpool does not know.
	ErrTLSValue = errors.New("pgpool: invalid TLS setting")
)

// TLSError is a TLS setting that cannot be applied.
type TLSError struct {
	Setting string // the pgbouncer.ini name, e.g. client_tls_cert_file
	Kind    error  // ErrTLSFile, ErrTLSIncomplete or ErrTLSValue
	Msg     string
	Err     error // the underlying error, if any
}

func (e *TLSError) Error() string { return e.Setting + ": " + e.Msg }

// Unwrap returns the class and the underlying error.
func (e *TLSError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// maxTLSFileSize bounds what is read of a key, certificate or CA file.
const maxTLSFileSize = 1 << 20

var sslModes = map[string]bool{
	"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true,
}

// tlsRequired reports whether an sslmode refuses connections without TLS.
func tlsRequired(mode string) bool {
	return mode == "require" || mode == "verify-ca" || mode == "verify-full"
}

// readTLSFile reads a PEM file of at most maxTLSFileSize bytes.
func readTLSFile(setting, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: err.Error(), Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTLSFileSize+1))
	if err != nil {
		return nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: err.Error(), Err: err}
	}
	if len(b) > maxTLSFileSize {
		return nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: fmt.Sprintf("%s is larger than %d bytes", path, maxTLSFileSize)}
	}
	return b, nil
}

// loadCerts reads a PEM file of certificates; it fails unless there is at least one
// and all parse.
func loadCerts(setting, path string) ([]byte, []*x509.Certificate, error) {
	b, err := readTLSFile(setting, path)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
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
			return nil, nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: fmt.Sprintf("%s: %v", path, err), Err: err}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: fmt.Sprintf("no PEM certificate in %s", path)}
	}
	return b, certs, nil
}

// loadKey reads a PEM private key (PKCS #8, PKCS #1 or SEC 1).
func loadKey(setting, path string) ([]byte, error) {
	b, err := readTLSFile(setting, path)
	if err != nil {
		return nil, err
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "PRIVATE KEY" && !strings.HasSuffix(blk.Type, " PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			return b, nil
		}
		if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
			return b, nil
		}
		if _, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
			return b, nil
		}
		return nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: fmt.Sprintf("%s: private key does not parse", path)}
	}
	return nil, &TLSError{Setting: setting, Kind: ErrTLSFile, Msg: fmt.Sprintf("no PEM private key in %s", path)}
}

// CheckTLSFile checks that the file a *_tls_key_file, *_tls_cert_file or
// *_tls_ca_file setting names (setting is its pgbouncer.ini name) can be read and
// holds a private key or certificates. An empty path is fine.
func CheckTLSFile(setting, path string) error {
	if path == "" {
		return nil
	}
	var err error
	switch {
	case strings.HasSuffix(setting, "_key_file"):
		_, err = loadKey(setting, path)
	default:
		_, _, err = loadCerts(setting, path)
	}
	return err
}

// keyPair loads a certificate and its key.
func keyPair(prefix string, f TLSFiles) (tls.Certificate, error) {
	certPEM, _, err := loadCerts(prefix+"cert_file", f.CertFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := loadKey(prefix+"key_file", f.KeyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// Both files are usable alone: the key is not the certificate's.
		return tls.Certificate{}, &TLSError{Setting: prefix + "key_file", Kind: ErrTLSIncomplete,
			Msg: fmt.Sprintf("%s does not belong to %s: %v", f.KeyFile, f.CertFile, err), Err: err}
	}
	return pair, nil
}

// certPool loads a CA file.
func certPool(setting, path string) (*x509.CertPool, error) {
	_, certs, err := loadCerts(setting, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// BuildClientTLS builds the TLS configuration pgpool presents to clients from
// client_tls_sslmode and the other client_tls_* settings. It returns nil for disable.
// Every mode but disable needs a key and certificate. verify-ca and verify-full
// require a client certificate signed by client_tls_ca_file; the other modes check a
// certificate only if the client sends one and a CA file is set, as PgBouncer does.
// Errors are *TLSError.
func BuildClientTLS(mode string, f TLSFiles) (*tls.Config, error) {
	const prefix = "client_tls_"
	if !sslModes[mode] {
		return nil, &TLSError{Setting: prefix + "sslmode", Kind: ErrTLSValue, Msg: fmt.Sprintf("unknown sslmode %q", mode)}
	}
	if mode == "disable" {
		return nil, nil
	}
	cfg := &tls.Config{}
	if err := tlsVersions(cfg, prefix+"protocols", f.Protocols); err != nil {
		return nil, err
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, &TLSError{Setting: prefix + "sslmode", Kind: ErrTLSIncomplete,
			Msg: fmt.Sprintf("%s needs client_tls_key_file and client_tls_cert_file", mode)}
	}
	pair, err := keyPair(prefix, f)
	if err != nil {
		return nil, err
	}
	cfg.Certificates = []tls.Certificate{pair}
	if f.CAFile != "" {
		if cfg.ClientCAs, err = certPool(prefix+"ca_file", f.CAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if mode == "verify-ca" || mode == "verify-full" {
		if f.CAFile == "" {
			return nil, &TLSError{Setting: prefix + "sslmode", Kind: ErrTLSIncomplete,
				Msg: fmt.Sprintf("%s needs client_tls_ca_file to check client certificates", mode)}
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// BuildServerTLS builds the TLS configuration pgpool uses towards PostgreSQL from
// server_tls_sslmode and the other server_tls_* settings; nil for disable. prefer
// and require do not check the server's certificate; verify-ca checks its chain
// against server_tls_ca_file (or the system's roots); verify-full also checks the
// host name, that of the database's host unless ServerName is set. A client
// certificate is presented when key and certificate files are set. Errors are
// *TLSError.
func BuildServerTLS(mode string, f TLSFiles) (*tls.Config, error) {
	const prefix = "server_tls_"
	if !sslModes[mode] {
		return nil, &TLSError{Setting: prefix + "sslmode", Kind: ErrTLSValue, Msg: fmt.Sprintf("unknown sslmode %q", mode)}
	}
	if mode == "disable" {
		return nil, nil
	}
	cfg := &tls.Config{}
	if err := tlsVersions(cfg, prefix+"protocols", f.Protocols); err != nil {
		return nil, err
	}
	switch {
	case (f.CertFile == "") != (f.KeyFile == ""):
		setting := prefix + "key_file"
		if f.CertFile == "" {
			setting = prefix + "cert_file"
		}
		return nil, &TLSError{Setting: setting, Kind: ErrTLSIncomplete,
			Msg: "server_tls_cert_file and server_tls_key_file go together"}
	case f.CertFile != "":
		pair, err := keyPair(prefix, f)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if f.CAFile != "" {
		var err error
		if cfg.RootCAs, err = certPool(prefix+"ca_file", f.CAFile); err != nil {
			return nil, err
		}
	}
	if mode == "verify-ca" || mode == "verify-full" {
		// pgpool checks the chain, and for verify-full the name, itself: Go would refuse
		// a certificate naming its host only in the Common Name, which libpq and
		// PgBouncer accept when it has no subjectAltName.
		// For verify-full the connect names the host (serverVerifier); until then
		// the configuration's ServerName is checked.
		cfg.InsecureSkipVerify = true
		host := ""
		if mode == "verify-full" {
			host = cfg.ServerName
		}
		cfg.VerifyConnection = serverVerifier(cfg.RootCAs, host, mode == "verify-full")
	}
	return cfg, nil
}

// serverVerifier checks a server's certificate chain against roots (nil: the
// system's) and, when full, that it names host.
func serverVerifier(roots *x509.CertPool, host string, full bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		err := verifyChain(cs, roots)
		if err == nil && full {
			err = verifyHostname(cs.PeerCertificates[0], host)
		}
		if err != nil {
			return &CertVerifyError{Err: err}
		}
		return nil
	}
}

// CertVerifyError is a server certificate that server_tls_sslmode verify-ca or
// verify-full rejects; its text starts with OpenSSL's "certificate verify failed",
// which PgBouncer logs.
type CertVerifyError struct{ Err error }

func (e *CertVerifyError) Error() string { return "certificate verify failed: " + e.Err.Error() }

// Unwrap returns the reason.
func (e *CertVerifyError) Unwrap() error { return e.Err }

// errHostMismatch: the certificate does not name the host connected to.
var errHostMismatch = errors.New("pgpool: server certificate does not match host name")

// verifyHostname checks that cert names host, as libpq does: by its
// subjectAltNames when it has any, else by its Common Name (a leading "*." matches
// one label).
func verifyHostname(cert *x509.Certificate, host string) error {
	if len(cert.DNSNames) > 0 || len(cert.IPAddresses) > 0 {
		return cert.VerifyHostname(host)
	}
	if cnMatches(cert.Subject.CommonName, host) {
		return nil
	}
	return fmt.Errorf("%w: %q is not %q", errHostMismatch, host, cert.Subject.CommonName)
}

// cnMatches reports whether a certificate's Common Name names host
// (case-insensitively; "*.example.com" matches one label in its place).
func cnMatches(cn, host string) bool {
	cn, host = strings.ToLower(strings.TrimSuffix(cn, ".")), strings.ToLower(strings.TrimSuffix(host, "."))
	if cn == "" || host == "" {
		return false
	}
	if cn == host {
		return true
	}
	if rest, ok := strings.CutPrefix(cn, "*."); ok {
		label, dom, ok := strings.Cut(host, ".")
		return ok && label != "" && dom == rest
	}
	return false
}

// errNoServerCert: the server sent no certificate to verify.
var errNoServerCert = errors.New("pgpool: server sent no certificate")

// verifyChain checks the server's certificate chain against roots (nil: the
// system's), without checking the host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errNoServerCert
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// tlsVersions applies a *_tls_protocols value: "secure" (TLS 1.2 and 1.3),
// "all", "legacy", "default", or a list of tlsv1.0 ... tlsv1.3. Go does not
// offer TLS 1.0 and 1.1 to servers by default; "all" and "legacy" allow them.
func tlsVersions(cfg *tls.Config, setting, value string) error {
	versions := map[string]uint16{
		"tlsv1.0": tls.VersionTLS10, "tlsv1.1": tls.VersionTLS11,
		"tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13,
	}
	var lo, hi uint16
	for _, f := range strings.FieldsFunc(strings.ToLower(value), func(r rune) bool {
		return r == ',' || r == ':' || r == ' '
	}) {
		f = strings.TrimPrefix(f, "+")
		switch f {
		case "", "secure", "default":
			lo, hi = minNonZero(lo, tls.VersionTLS12), max(hi, tls.VersionTLS13)
		case "all", "legacy":
			lo, hi = tls.VersionTLS10, tls.VersionTLS13
		default:
			v, ok := versions[f]
			if !ok {
				return &TLSError{Setting: setting, Kind: ErrTLSValue, Msg: fmt.Sprintf("unknown TLS protocol %q", f)}
			}
			lo, hi = minNonZero(lo, v), max(hi, v)
		}
	}
	if lo == 0 {
		lo, hi = tls.VersionTLS12, tls.VersionTLS13
	}
	cfg.MinVersion, cfg.MaxVersion = lo, hi
	return nil
}

func minNonZero(a, b uint16) uint16 {
	if a == 0 || b < a {
		return b
	}
	return a
}
