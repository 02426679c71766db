package main

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/poolsuite/poolsuite/internal/config/pgini"
	"github.com/poolsuite/poolsuite/internal/pgpool"
)

// runConfig is everything pgpool runs with, derived from one pgbouncer.ini.
type runConfig struct {
	// Ini is the file as read, for the listening, logging and pidfile settings.
	Ini *pgini.Config
	// Pooler is the pooler's configuration.
	Pooler *pgpool.Config
}

// ConfigErrors is every problem found in a configuration and its auth_file, in
// file order, each naming its place.
type ConfigErrors []error

// Error lists the problems, one a line.
func (ce ConfigErrors) Error() string {
	lines := make([]string, len(ce))
	for i, e := range ce {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (ce ConfigErrors) Unwrap() []error { return ce }

// loadConfig reads the pgbouncer.ini at path and the auth_file it names, and maps
// them onto the pooler's configuration. warnings lists settings that are unknown
// or not honoured, each with its place. The error, if not nil, is a ConfigErrors
// with every problem found; the runConfig is then nil.
func loadConfig(path string) (rc *runConfig, warnings []string, err error) {
	ini, iniWarnings, err := pgini.Load(path)
	for _, w := range iniWarnings {
		warnings = append(warnings, w.String())
	}
	if err != nil {
		return nil, warnings, flatten(err)
	}
	var problems ConfigErrors
	users := map[string]string{}
	if ini.AuthFile != "" {
		users, err = pgini.LoadUserlist(ini.AuthFile)
		if err != nil {
			problems = append(problems, flatten(err)...)
		}
	}
	m := mapper{ini: ini}
	pc := m.pooler(users)
	problems = append(problems, m.errs...)
	warnings = append(warnings, m.warnings...)
	if len(problems) > 0 {
		return nil, warnings, problems
	}
	return &runConfig{Ini: ini, Pooler: pc}, warnings, nil
}

// flatten turns a pgini Problems (or any error) into a ConfigErrors.
func flatten(err error) ConfigErrors {
	var ps pgini.Problems
	if errors.As(err, &ps) {
		out := make(ConfigErrors, len(ps))
		for i, p := range ps {
			out[i] = p
		}
		return out
	}
	return ConfigErrors{err}
}

// mapper fills a pgpool.Config from a pgini.Config, collecting errors and
// warnings as it goes.
type mapper struct {
	ini      *pgini.Config
	errs     ConfigErrors
	warnings []string
}

// pos returns where the [pgbouncer] setting key was set, or "".
func (m *mapper) pos(key string) string {
	if p, ok := m.ini.SettingPos(key); ok {
		return p.String()
	}
	return m.ini.File
}

func (m *mapper) fail(pos, key string, class error, format string, args ...any) {
	m.errs = append(m.errs, &SettingError{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...), Err: class})
}

func (m *mapper) warn(pos, key, format string, args ...any) {
	s := key + ": " + fmt.Sprintf(format, args...)
	if pos != "" {
		s = pos + ": " + s
	}
	m.warnings = append(m.warnings, s)
}

// pooler maps the whole configuration.
func (m *mapper) pooler(users map[string]string) *pgpool.Config {
	c := m.ini
	pc := pgpool.Defaults()
	pc.AuthType = m.authType()
	pc.Userlist = users
	pc.AuthUser = c.AuthUser
	pc.AuthQuery = c.AuthQuery
	pc.AdminUsers = c.AdminUsers
	pc.StatsUsers = c.StatsUsers

	pc.PoolMode = poolMode(c.PoolMode, pgpool.PoolSession)
	pc.MaxClientConn = c.MaxClientConn
	pc.DefaultPoolSize = c.DefaultPoolSize
	pc.MinPoolSize = c.MinPoolSize
	pc.ReservePoolSize = c.ReservePoolSize
	pc.ReservePoolTimeout = c.ReservePoolTimeout
	pc.MaxDBConnections = c.MaxDBConnections
	pc.MaxUserConnections = c.MaxUserConnections

	pc.ServerResetQuery = c.ServerResetQuery
	pc.ServerResetQueryAlways = c.ServerResetQueryAlways
	pc.ServerCheckQuery = c.ServerCheckQuery
	if c.ServerCheckQuery == pgini.EmptyQuery {
		pc.ServerCheckQuery = ";"
	}
	pc.ServerCheckDelay = c.ServerCheckDelay
	pc.ServerLifetime = c.ServerLifetime
	pc.ServerIdleTimeout = c.ServerIdleTimeout
	pc.ServerConnectTimeout = c.ServerConnectTimeout
	pc.ServerLoginRetry = c.ServerLoginRetry
	pc.ServerFastClose = c.ServerFastClose
	pc.Verbose = c.Verbose
	pc.LogConnections = c.LogConnections
	pc.LogDisconnections = c.LogDisconnections
	pc.LogPoolerErrors = c.LogPoolerErrors
	pc.LogStats = c.LogStats
	pc.StatsPeriod = c.StatsPeriod

	pc.QueryWaitTimeout = c.QueryWaitTimeout
	pc.QueryTimeout = c.QueryTimeout
	pc.IdleTransactionTimeout = c.IdleTransactionTimeout
	pc.ClientIdleTimeout = c.ClientIdleTimeout
	pc.ClientLoginTimeout = c.ClientLoginTimeout
	pc.SuspendTimeout = c.SuspendTimeout
	pc.CancelWaitTimeout = c.CancelWaitTimeout

	pc.IgnoreStartupParameters = c.IgnoreStartupParameters
	pc.MaxPacketSize = int(c.MaxPacketSize) // 2147483647 unless set, as in Defaults
	pc.MaxPreparedStatements = c.MaxPreparedStatements
	pc.DisableSessionPinning = !c.SessionPinning
	pc.MetricsListen = c.MetricsListen

	pc.ClientTLSMode = sslMode(c.ClientTLS.SSLMode, "disable")
	pc.ClientTLSFiles = tlsFiles(c.ClientTLS)
	pc.ClientTLS = m.clientTLS()
	pc.ServerTLSMode = sslMode(c.ServerTLS.SSLMode, "prefer")
	pc.ServerTLSFiles = tlsFiles(c.ServerTLS)
	pc.ServerTLS = m.serverTLS()

	pc.Databases = map[string]*pgpool.Database{}
	for _, name := range sortedKeys(c.Databases) {
		pc.Databases[name] = m.database(c.Databases[name])
	}
	if c.Fallback != nil {
		pc.Databases["*"] = m.database(c.Fallback)
	}
	pc.Users = map[string]*pgpool.User{}
	for _, name := range sortedKeys(c.Users) {
		pc.Users[name] = m.user(c.Users[name])
	}
	for _, st := range pgini.KnownSettings() {
		v, ok := c.SettingText(st.Name)
		if !ok {
			v = st.Default
		}
		pc.FileSettings = append(pc.FileSettings, pgpool.FileSetting{Name: st.Name, Value: v, Default: st.Default})
	}
	m.unhonoured()
	return pc
}

// authType maps auth_type; the methods pgpool lacks are errors.
func (m *mapper) authType() string {
	switch a := m.ini.AuthType; a {
	case pgini.AuthUnset, pgini.AuthMD5:
		return "md5"
	case pgini.AuthTrust:
		return "trust"
	case pgini.AuthPlain:
		return "plain"
	case pgini.AuthSCRAMSHA256:
		return "scram-sha-256"
	case pgini.AuthCert:
		return "cert"
	default:
		m.fail(m.pos("auth_type"), "auth_type", ErrUnsupported,
			"auth_type %s is not supported by pgpool (use scram-sha-256, md5, plain, trust or cert)", a)
		return "md5"
	}
}

// poolMode maps a pool mode; PoolModeInherit gives def.
func poolMode(pm pgini.PoolMode, def pgpool.PoolMode) pgpool.PoolMode {
	switch pm {
	case pgini.PoolModeSession:
		return pgpool.PoolSession
	case pgini.PoolModeTransaction:
		return pgpool.PoolTransaction
	case pgini.PoolModeStatement:
		return pgpool.PoolStatement
	}
	return def
}

// optPoolMode maps a per-entry pool mode; nil means "inherit".
func optPoolMode(pm pgini.PoolMode) *pgpool.PoolMode {
	if pm == pgini.PoolModeInherit {
		return nil
	}
	v := poolMode(pm, pgpool.PoolSession)
	return &v
}

// database maps one [databases] entry.
func (m *mapper) database(d *pgini.Database) *pgpool.Database {
	pos := d.Pos.String()
	out := &pgpool.Database{
		Host:        d.Host,
		Port:        d.Port,
		DBName:      d.DBName,
		User:        d.User,
		Password:    d.Password,
		ReservePool: -1,
		PoolMode:    optPoolMode(d.PoolMode),

		LoadBalanceDisable: d.LoadBalanceHosts == pgini.LoadBalanceDisable,
		AuthUser:           d.AuthUser,
		ConnectQuery:       d.ConnectQuery,
	}
	hosts := strings.Split(d.Host, ",")
	switch {
	case len(hosts) > 1 && strings.TrimSpace(strings.Join(hosts, "")) == "":
		m.fail(pos, d.Name, ErrUnsupported, "host list %q names no host", d.Host)
	case slices.ContainsFunc(hosts, func(h string) bool { return strings.HasPrefix(strings.TrimSpace(h), "@") }):
		m.fail(pos, d.Name, ErrUnsupported, "abstract unix sockets (%q) are not supported by pgpool", d.Host)
	case d.Host == "" && m.ini.UnixSocketDir != "":
		// As in PgBouncer: no host means the unix socket in unix_socket_dir.
		out.Host = m.ini.UnixSocketDir
	}
	if d.PoolSize != nil {
		out.PoolSize = *d.PoolSize
		if out.PoolSize == 0 {
			m.warn(pos, d.Name, "pool_size=0: pgpool uses default_pool_size instead")
		}
	}
	if d.MinPoolSize != nil {
		out.MinPoolSize = *d.MinPoolSize
	}
	if d.ReservePoolSize != nil {
		out.ReservePool = *d.ReservePoolSize
	}
	if d.MaxDBConnections != nil {
		out.MaxDBConnections = *d.MaxDBConnections
	}
	params := map[string]string{}
	for k, v := range map[string]string{
		"client_encoding":  d.ClientEncoding,
		"datestyle":        d.DateStyle,
		"timezone":         d.TimeZone,
		"application_name": d.ApplicationName,
	} {
		if v != "" {
			params[k] = v
		}
	}
	if len(params) > 0 {
		out.StartupParams = params
	}
	unsupported := map[string]bool{
		"auth_dbname":               d.AuthDBName != "",
		"auth_query":                d.AuthQuery != "",
		"max_db_client_connections": d.MaxDBClientConnections != nil && *d.MaxDBClientConnections > 0,
		"server_lifetime":           d.ServerLifetime != nil && *d.ServerLifetime > 0,
		"query_wait_timeout":        d.QueryWaitTimeout != nil,
	}
	for _, key := range sortedKeys(unsupported) {
		if unsupported[key] {
			m.warn(pos, d.Name, "%s in a [databases] entry is not supported by pgpool yet; ignored", key)
		}
	}
	return out
}

// user maps one [users] entry.
func (m *mapper) user(u *pgini.User) *pgpool.User {
	out := &pgpool.User{PoolMode: optPoolMode(u.PoolMode)}
	if u.MaxUserConnections != nil {
		out.MaxUserConnections = *u.MaxUserConnections
	}
	unsupported := map[string]bool{
		"pool_size":                   u.PoolSize != nil,
		"reserve_pool_size":           u.ReservePoolSize != nil,
		"max_user_client_connections": u.MaxUserClientConnections != nil && *u.MaxUserClientConnections > 0,
		"query_timeout":               u.QueryTimeout != nil,
		"idle_transaction_timeout":    u.IdleTransactionTimeout != nil,
		"transaction_timeout":         u.TransactionTimeout != nil,
		"query_wait_timeout":          u.QueryWaitTimeout != nil,
		"client_idle_timeout":         u.ClientIdleTimeout != nil,
	}
	for _, key := range sortedKeys(unsupported) {
		if unsupported[key] {
			m.warn(u.Pos.String(), u.Name, "%s in a [users] entry is not supported by pgpool yet; ignored", key)
		}
	}
	return out
}

// unhonoured warns about [pgbouncer] settings pgini implements but the pooler does
// not act on yet, when the file sets them.
func (m *mapper) unhonoured() {
	for _, key := range []string{
		"auth_dbname", "max_db_client_connections", "max_user_client_connections",
		"server_round_robin", "transaction_timeout",
		"query_wait_notify", "track_extra_parameters", "application_name_add_host",
		"autodb_idle_timeout", "listen_backlog", "pkt_buf",
		"tcp_keepalive", "tcp_keepcnt", "tcp_keepidle", "tcp_keepintvl",
		"tcp_user_timeout", "tcp_socket_buffer", "dns_max_ttl", "dns_nxdomain_ttl",
		"scram_iterations",
		"client_tls_ciphers", "client_tls13_ciphers", "server_tls_ciphers", "server_tls13_ciphers",
	} {
		if p, ok := m.ini.SettingPos(key); ok {
			m.warn(p.String(), key, "not honoured by pgpool yet; ignored")
		}
	}
}

func sortedKeys[V any](mp map[string]V) []string {
	keys := make([]string, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
