package main

import (
	"crypto/tls"
	"errors"
	"strings"

	"github.com/poolsuite/poolsuite/internal/config/pgini"
	"github.com/poolsuite/poolsuite/internal/pgpool"
)

// tlsFiles maps one side's *_tls_* settings besides the sslmode.
func tlsFiles(t pgini.TLSConfig) pgpool.TLSFiles {
	return pgpool.TLSFiles{
		KeyFile: t.KeyFile, CertFile: t.CertFile, CAFile: t.CAFile,
		Protocols: t.Protocols, Ciphers: t.Ciphers,
	}
}

// sslMode is an sslmode's name as the pooler takes it; unset gives def.
func sslMode(m pgini.SSLMode, def string) string {
	if m == pgini.SSLModeUnset {
		return def
	}
	return m.String()
}

// clientTLS builds the TLS configuration pgpool presents to clients
// (client_tls_*), nil when client_tls_sslmode is disable; see
// pgpool.BuildClientTLS.
func (m *mapper) clientTLS() *tls.Config {
	t := m.ini.ClientTLS
	cfg, err := pgpool.BuildClientTLS(sslMode(t.SSLMode, "disable"), tlsFiles(t))
	m.tlsFail(err)
	return cfg
}

// serverTLS builds the TLS configuration pgpool uses towards PostgreSQL
// (server_tls_*); see pgpool.BuildServerTLS. With verify-full the name checked
// is the database's host, which only one host makes unambiguous.
func (m *mapper) serverTLS() *tls.Config {
	t := m.ini.ServerTLS
	cfg, err := pgpool.BuildServerTLS(sslMode(t.SSLMode, "prefer"), tlsFiles(t))
	m.tlsFail(err)
	if cfg == nil || t.SSLMode != pgini.SSLModeVerifyFull {
		return cfg
	}
	hosts := m.tcpHosts()
	if len(hosts) != 1 {
		m.fail(m.pos("server_tls_sslmode"), "server_tls_sslmode", ErrUnsupported,
			"verify-full needs all [databases] entries on one TCP host (found %d: %s)",
			len(hosts), strings.Join(hosts, ", "))
	} else {
		cfg.ServerName = hosts[0]
	}
	return cfg
}

// tlsFail records a pgpool.TLSError at the place of its setting.
func (m *mapper) tlsFail(err error) {
	if err == nil {
		return
	}
	var te *pgpool.TLSError
	if errors.As(err, &te) {
		m.fail(m.pos(te.Setting), te.Setting, ErrTLS, "%s", te.Msg)
		return
	}
	m.fail(m.ini.File, "tls", ErrTLS, "%v", err)
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
