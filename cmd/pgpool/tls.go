package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"

	"github.com/poolsuite/poolsuite/internal/config/pgini"
)

// clientTLS builds the TLS configuration pgpool presents to clients
// (client_tls_*). It returns nil when client_tls_sslmode is disable.
// verify-ca and verify-full require a client certificate signed by
// client_tls_ca_file; the other modes check a certificate only if the client
// sends one and a CA file is set, as PgBouncer does.
func (m *mapper) clientTLS() *tls.Config {
	t := m.ini.ClientTLS
	if t.SSLMode == pgini.SSLModeDisable || t.SSLMode == pgini.SSLModeUnset {
		return nil
	}
	cfg := &tls.Config{}
	m.tlsVersions(cfg, "client_tls_protocols", t.Protocols)
	if t.CertFile == "" || t.KeyFile == "" {
		m.fail(m.pos("client_tls_sslmode"), "client_tls_sslmode", ErrTLS,
			"%s needs client_tls_key_file and client_tls_cert_file", t.SSLMode)
		return nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		m.fail(m.pos("client_tls_cert_file"), "client_tls_cert_file", ErrTLS, "%v", err)
		return nil
	}
	cfg.Certificates = []tls.Certificate{cert}
	if t.CAFile != "" {
		cfg.ClientCAs = m.certPool("client_tls_ca_file", t.CAFile)
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if t.SSLMode == pgini.SSLModeVerifyCA || t.SSLMode == pgini.SSLModeVerifyFull {
		if t.CAFile == "" {
			m.fail(m.pos("client_tls_sslmode"), "client_tls_sslmode", ErrTLS,
				"%s needs client_tls_ca_file to check client certificates", t.SSLMode)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// serverTLS builds the TLS configuration pgpool uses towards PostgreSQL
// (server_tls_*). prefer and require do not check the server's certificate;
// verify-ca checks its chain against server_tls_ca_file (or the system's
// roots); verify-full also checks the host name.
func (m *mapper) serverTLS() *tls.Config {
	t := m.ini.ServerTLS
	if t.SSLMode == pgini.SSLModeDisable || t.SSLMode == pgini.SSLModeUnset {
		return nil
	}
	cfg := &tls.Config{}
	m.tlsVersions(cfg, "server_tls_protocols", t.Protocols)
	if (t.CertFile == "") != (t.KeyFile == "") {
		m.fail(m.pos("server_tls_cert_file"), "server_tls_cert_file", ErrTLS,
			"server_tls_cert_file and server_tls_key_file go together")
	} else if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			m.fail(m.pos("server_tls_cert_file"), "server_tls_cert_file", ErrTLS, "%v", err)
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if t.CAFile != "" {
		cfg.RootCAs = m.certPool("server_tls_ca_file", t.CAFile)
	}
	switch t.SSLMode {
	case pgini.SSLModeVerifyCA:
		// Check the chain but not the name: Go checks both unless told otherwise.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, roots)
		}
	case pgini.SSLModeVerifyFull:
		// The pooler dials every database with this one configuration; the name
		// to check is the database's host, which only one host makes unambiguous.
		hosts := m.tcpHosts()
		if len(hosts) != 1 {
			m.fail(m.pos("server_tls_sslmode"), "server_tls_sslmode", ErrUnsupported,
				"verify-full needs all [databases] entries on one TCP host (found %d: %s)",
				len(hosts), strings.Join(hosts, ", "))
		} else {
			cfg.ServerName = hosts[0]
		}
	}
	return cfg
}

// verifyChain checks the server's certificate chain against roots (nil: the
// system's), without checking the host name.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("pgpool: server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// tcpHosts lists the distinct TCP hosts of the [databases] entries.
func (m *mapper) tcpHosts() []string {
	set := map[string]bool{}
	add := func(d *pgini.Database) {
		if d != nil && d.Host != "" && !strings.HasPrefix(d.Host, "/") && !strings.HasPrefix(d.Host, "@") {
			set[d.Host] = true
		}
	}
	for _, d := range m.ini.Databases {
		add(d)
	}
	add(m.ini.Fallback)
	return sortedKeys(set)
}

// certPool reads a PEM file of CA certificates.
func (m *mapper) certPool(key, path string) *x509.CertPool {
	pem, err := os.ReadFile(path)
	if err != nil {
		m.fail(m.pos(key), key, ErrTLS, "%v", err)
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		m.fail(m.pos(key), key, ErrTLS, "no PEM certificate in %s", path)
		return nil
	}
	return pool
}

// tlsVersions applies a *_tls_protocols value: "secure" (TLS 1.2 and 1.3),
// "all", "legacy", "default", or a list of tlsv1.0 ... tlsv1.3. Go does not
// offer TLS 1.0 and 1.1 to servers by default; "all" and "legacy" allow them.
func (m *mapper) tlsVersions(cfg *tls.Config, key, value string) {
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
				m.fail(m.pos(key), key, ErrTLS, "unknown TLS protocol %q", f)
				continue
			}
			lo, hi = minNonZero(lo, v), max(hi, v)
		}
	}
	if lo == 0 {
		lo, hi = tls.VersionTLS12, tls.VersionTLS13
	}
	cfg.MinVersion, cfg.MaxVersion = lo, hi
}

func minNonZero(a, b uint16) uint16 {
	if a == 0 || b < a {
		return b
	}
	return a
}
