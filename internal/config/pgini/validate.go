package pgini

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Validate checks the whole Config: values in range, enumerations set,
// and settings that only make sense together. It never changes a value.
// The error, if not nil, is a Problems naming each bad setting (by its
// pgbouncer.ini key, or the database or user name) and, for values read
// from a file, the file and line.
func (c *Config) Validate() error {
	v := validator{c: c}
	v.settings()
	v.databases()
	v.users()
	return v.problems.err()
}

type validator struct {
	c        *Config
	problems Problems
}

// add records a problem with the [pgbouncer] setting key.
func (v *validator) add(key, value string, err error) {
	pos := v.c.pos[key]
	v.problems = append(v.problems, &Problem{File: pos.File, Line: pos.Line, Key: key, Value: value, Msg: message(err), Err: err})
}

func (v *validator) nonNegative(key string, n int) {
	if n < 0 {
		v.add(key, fmt.Sprint(n), invalidf("must not be negative"))
	}
}

func (v *validator) duration(key string, d time.Duration) {
	if d < 0 {
		v.add(key, d.String(), invalidf("must not be negative"))
	}
}

func (v *validator) settings() {
	c := v.c
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		v.add("listen_port", fmt.Sprint(c.ListenPort), invalidf("out of range [0, 65535]"))
	}
	if c.UnixSocketMode < 0 || c.UnixSocketMode > 0o7777 {
		v.add("unix_socket_mode", fmt.Sprintf("%#o", c.UnixSocketMode), invalidf("not a file mode"))
	}
	if c.MaxPacketSize < 0 || c.MaxPacketSize > math.MaxUint32 {
		v.add("max_packet_size", fmt.Sprint(c.MaxPacketSize), invalidf("out of range [0, %d]", uint32(math.MaxUint32)))
	}
	if c.ScramIterations < 1 {
		v.add("scram_iterations", fmt.Sprint(c.ScramIterations), invalidf("must be at least 1"))
	}
	for _, n := range []struct {
		key string
		val int
	}{
		{"listen_backlog", c.ListenBacklog},
		{"max_client_conn", c.MaxClientConn},
		{"default_pool_size", c.DefaultPoolSize},
		{"min_pool_size", c.MinPoolSize},
		{"reserve_pool_size", c.ReservePoolSize},
		{"max_db_connections", c.MaxDBConnections},
		{"max_user_connections", c.MaxUserConnections},
		{"max_db_client_connections", c.MaxDBClientConnections},
		{"max_user_client_connections", c.MaxUserClientConnections},
		{"max_prepared_statements", c.MaxPreparedStatements},
		{"verbose", c.Verbose},
		{"pkt_buf", c.PktBuf},
		{"tcp_keepcnt", c.TCPKeepcnt},
		{"tcp_socket_buffer", c.TCPSocketBuffer},
	} {
		v.nonNegative(n.key, n.val)
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"reserve_pool_timeout", c.ReservePoolTimeout},
		{"server_check_delay", c.ServerCheckDelay},
		{"server_lifetime", c.ServerLifetime},
		{"server_idle_timeout", c.ServerIdleTimeout},
		{"server_connect_timeout", c.ServerConnectTimeout},
		{"server_login_retry", c.ServerLoginRetry},
		{"query_timeout", c.QueryTimeout},
		{"query_wait_timeout", c.QueryWaitTimeout},
		{"query_wait_notify", c.QueryWaitNotify},
		{"cancel_wait_timeout", c.CancelWaitTimeout},
		{"client_idle_timeout", c.ClientIdleTimeout},
		{"client_login_timeout", c.ClientLoginTimeout},
		{"idle_transaction_timeout", c.IdleTransactionTimeout},
		{"transaction_timeout", c.TransactionTimeout},
		{"autodb_idle_timeout", c.AutodbIdleTimeout},
		{"suspend_timeout", c.SuspendTimeout},
		{"stats_period", c.StatsPeriod},
		{"tcp_keepidle", c.TCPKeepidle},
		{"tcp_keepintvl", c.TCPKeepintvl},
		{"tcp_user_timeout", c.TCPUserTimeout},
		{"dns_max_ttl", c.DNSMaxTTL},
		{"dns_nxdomain_ttl", c.DNSNXDomainTTL},
	} {
		v.duration(d.key, d.val)
	}

	if c.PoolMode < PoolModeSession || c.PoolMode > PoolModeStatement {
		v.add("pool_mode", c.PoolMode.String(), invalidf("must be session, transaction or statement"))
	}
	switch c.AuthType {
	case AuthAny, AuthTrust, AuthPlain, AuthMD5, AuthCert, AuthSCRAMSHA256:
	case AuthHBA:
		if c.AuthHBAFile == "" {
			v.add("auth_type", c.AuthType.String(), detailf(ErrInconsistent, "auth_type = hba needs auth_hba_file"))
		}
	case AuthPAM, AuthLDAP:
		v.add("auth_type", c.AuthType.String(), detailf(ErrUnsupported, "auth_type %s is not supported by pgpool", c.AuthType))
	default:
		v.add("auth_type", c.AuthType.String(), invalidf("not set"))
	}
	v.tls("client", &c.ClientTLS, true)
	v.tls("server", &c.ServerTLS, false)
}

// tls checks one side's TLS settings. A listener cannot offer TLS without
// a key and certificate, so client TLS needs both; a server-side client
// certificate needs both halves or neither.
func (v *validator) tls(side string, t *TLSConfig, listener bool) {
	mode := side + "_tls_sslmode"
	if t.SSLMode < SSLModeDisable || t.SSLMode > SSLModeVerifyFull {
		v.add(mode, t.SSLMode.String(), invalidf("not set"))
		return
	}
	if listener && t.SSLMode != SSLModeDisable && (t.KeyFile == "" || t.CertFile == "") {
		v.add(mode, t.SSLMode.String(), detailf(ErrInconsistent,
			"%s_tls_sslmode = %s needs %s_tls_key_file and %s_tls_cert_file", side, t.SSLMode, side, side))
	}
	if !listener && (t.KeyFile == "") != (t.CertFile == "") {
		key, other, val := side+"_tls_key_file", side+"_tls_cert_file", t.KeyFile
		if t.KeyFile == "" {
			key, other, val = other, key, t.CertFile
		}
		v.add(key, val, detailf(ErrInconsistent, "needs %s too", other))
	}
}

// entry adds a problem about a [databases] or [users] entry.
func (v *validator) entry(pos Pos, name, param, value string, err error) {
	v.problems = append(v.problems, &Problem{File: pos.File, Line: pos.Line, Key: name, Value: value,
		Msg: fmt.Sprintf("parameter %s: %s", param, message(err)), Err: err})
}

func (v *validator) databases() {
	names := make([]string, 0, len(v.c.Databases))
	for name := range v.c.Databases {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		db := v.c.Databases[name]
		if db == nil {
			v.entry(Pos{}, name, "", "", invalidf("nil entry"))
			continue
		}
		if name == ReservedDatabase {
			v.problems = append(v.problems, &Problem{File: db.Pos.File, Line: db.Pos.Line, Key: name,
				Msg: "is the admin console", Err: ErrReservedName})
		}
		if db.Name != name {
			v.entry(db.Pos, name, "Name", db.Name, invalidf("does not match the entry's name %q", name))
		}
		if db.DBName == "" {
			v.entry(db.Pos, name, "dbname", "", invalidf("must not be empty"))
		}
		v.database(db)
	}
	if v.c.Fallback != nil {
		v.database(v.c.Fallback)
	}
}

func (v *validator) database(db *Database) {
	if db.Port < 1 || db.Port > 65535 {
		v.entry(db.Pos, db.Name, "port", fmt.Sprint(db.Port), invalidf("out of range [1, 65535]"))
	}
	if db.PoolMode < PoolModeInherit || db.PoolMode > PoolModeStatement {
		v.entry(db.Pos, db.Name, "pool_mode", db.PoolMode.String(), invalidf("unknown pool mode"))
	}
	for _, n := range []struct {
		param string
		val   *int
	}{
		{"pool_size", db.PoolSize},
		{"min_pool_size", db.MinPoolSize},
		{"reserve_pool_size", db.ReservePoolSize},
		{"max_db_connections", db.MaxDBConnections},
		{"max_db_client_connections", db.MaxDBClientConnections},
	} {
		if n.val != nil && *n.val < 0 {
			v.entry(db.Pos, db.Name, n.param, fmt.Sprint(*n.val), invalidf("must not be negative"))
		}
	}
	for _, d := range []struct {
		param string
		val   *time.Duration
	}{
		{"server_lifetime", db.ServerLifetime},
		{"query_wait_timeout", db.QueryWaitTimeout},
	} {
		if d.val != nil && *d.val < 0 {
			v.entry(db.Pos, db.Name, d.param, d.val.String(), invalidf("must not be negative"))
		}
	}
}

func (v *validator) users() {
	names := make([]string, 0, len(v.c.Users))
	for name := range v.c.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		u := v.c.Users[name]
		if u == nil {
			v.entry(Pos{}, name, "", "", invalidf("nil entry"))
			continue
		}
		if u.Name != name {
			v.entry(u.Pos, name, "Name", u.Name, invalidf("does not match the entry's name %q", name))
		}
		if u.PoolMode < PoolModeInherit || u.PoolMode > PoolModeStatement {
			v.entry(u.Pos, name, "pool_mode", u.PoolMode.String(), invalidf("unknown pool mode"))
		}
		for _, n := range []struct {
			param string
			val   *int
		}{
			{"pool_size", u.PoolSize},
			{"reserve_pool_size", u.ReservePoolSize},
			{"max_user_connections", u.MaxUserConnections},
			{"max_user_client_connections", u.MaxUserClientConnections},
		} {
			if n.val != nil && *n.val < 0 {
				v.entry(u.Pos, name, n.param, fmt.Sprint(*n.val), invalidf("must not be negative"))
			}
		}
		for _, d := range []struct {
			param string
			val   *time.Duration
		}{
			{"query_timeout", u.QueryTimeout},
			{"idle_transaction_timeout", u.IdleTransactionTimeout},
			{"transaction_timeout", u.TransactionTimeout},
			{"query_wait_timeout", u.QueryWaitTimeout},
			{"client_idle_timeout", u.ClientIdleTimeout},
		} {
			if d.val != nil && *d.val < 0 {
				v.entry(u.Pos, name, d.param, d.val.String(), invalidf("must not be negative"))
			}
		}
	}
}
