package pgpool

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// startTLS negotiates TLS per server_tls_sslmode.
func (s *server) startTLS(o *serverOptions) error {
	switch o.tlsMode {
	case "", "disable", "allow":
		return nil
	}
	var req [8]byte
	binary.BigEndian.PutUint32(req[:], 8)
	binary.BigEndian.PutUint32(req[4:], wire.SSLRequestCode)
	if _, err := s.conn.Write(req[:]); err != nil {
		return connFailed(err)
	}
	var ans [1]byte
	if _, err := io.ReadFull(s.conn, ans[:]); err != nil {
		return connFailed(err)
	}
	if ans[0] != 'S' {
		if o.tlsMode == "prefer" {
			return nil
		}
		return fatalf(CodeConnectionFailure, "server does not support TLS (server_tls_sslmode=%s)", o.tlsMode)
	}
	cfg := o.tlsConfig
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	switch o.tlsMode {
	case "prefer", "require":
		cfg.InsecureSkipVerify = true
	case "verify-full":
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(o.addr)
		}
		if cfg.VerifyConnection != nil {
			cfg.VerifyConnection = serverVerifier(cfg.RootCAs, cfg.ServerName, true)
		}
	}
	tc := tls.Client(s.conn, cfg)
	if err := tc.Handshake(); err != nil {
		return &Error{Severity: "FATAL", Code: CodeConnectionFailure,
			Message: fmt.Sprintf("server TLS handshake failed: %v", err), Err: err}
	}
	s.conn = tc
	s.tls = true
	return nil
}
