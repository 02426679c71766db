package pgini

import (
	"slices"
	"strings"
	"time"
)

// Config is a loaded pgbouncer.ini: the [databases] and [users] entries and
// every [pgbouncer] setting pgpool implements. Obtain one from Load, Parse or
// Default; a zero Config is not useful, since the zero values below are not
// PgBouncer's defaults. Each field's comment gives the ini key, PgBouncer's
// default and what zero means.
type Config struct {
	// File is the path of the main file; "" for a Config not read from a file.
	File string

	// Databases holds the [databases] entries by client-facing name,
	// without the "*" fallback.
	Databases map[string]*Database
	// Fallback is the "*" entry of [databases], used for any database not
	// listed (see (*Config).Database); nil if there is none.
	Fallback *Database
	// Users holds the [users] entries by user name.
	Users map[string]*User

	// ListenAddr (listen_addr, default empty) lists the addresses to accept
	// TCP connections on; "*" means all addresses. Empty: no TCP listener,
	// only the Unix socket. PgBouncer separates entries with commas and/or
	// white space.
	ListenAddr []string
	// ListenPort (listen_port, default 6432) is the TCP port, also used in
	// the Unix socket's name (.s.PGSQL.6432). 0 lets the system choose.
	ListenPort int
	// ListenBacklog (listen_backlog, default 128) is the listen(2) backlog.
	ListenBacklog int
	// UnixSocketDir (unix_socket_dir, default "/tmp" as in PgBouncer;
	// Debian's file sets /var/run/postgresql) is where the Unix socket is
	// created, and the directory used for [databases] entries without
	// host. Empty: no Unix socket.
	UnixSocketDir string
	// UnixSocketMode (unix_socket_mode, default 0777) is the socket's file mode.
	UnixSocketMode int
	// UnixSocketGroup (unix_socket_group, default empty) is the socket's
	// group; empty leaves it unchanged.
	UnixSocketGroup string
	// SoReuseport (so_reuseport, default 0) sets SO_REUSEPORT on listeners.
	SoReuseport bool

	// AuthType (auth_type, default md5) is how clients authenticate.
	AuthType AuthType
	// AuthFile (auth_file, default none) is the userlist.txt path; empty: none.
	AuthFile string
	// AuthHBAFile (auth_hba_file, default empty) is the pg_hba.conf-style
	// file used when AuthType is AuthHBA.
	AuthHBAFile string
	// AuthIdentFile (auth_ident_file, PgBouncer 1.23, default empty) is the
	// pg_ident.conf-style user map for AuthHBAFile.
	AuthIdentFile string
	// AuthUser (auth_user, default empty) is the user that runs AuthQuery
	// for users not in the auth file; empty: no auth_query lookups.
	AuthUser string
	// AuthQuery (auth_query, default "SELECT usename, passwd FROM pg_shadow
	// WHERE usename=$1") fetches a user's secret.
	AuthQuery string
	// AuthDBName (auth_dbname, PgBouncer 1.19, default empty) is the
	// database AuthQuery runs in; empty: the database the client asked for.
	AuthDBName string

	// AdminUsers (admin_users) may run every admin console command.
	AdminUsers []string
	// StatsUsers (stats_users) may run the admin console's read-only
	// commands (SHOW ...).
	StatsUsers []string

	// PoolMode (pool_mode, default session) is the pooling mode of
	// databases and users that do not set their own.
	PoolMode PoolMode
	// MaxClientConn (max_client_conn, default 100) limits client connections.
	MaxClientConn int
	// DefaultPoolSize (default_pool_size, default 20) is the number of
	// server connections per (database, user) pool.
	DefaultPoolSize int
	// MinPoolSize (min_pool_size, default 0) keeps at least this many
	// server connections open per pool; 0: none.
	MinPoolSize int
	// ReservePoolSize (reserve_pool_size, default 0) is how many extra
	// server connections a pool may open when clients wait too long; 0: none.
	ReservePoolSize int
	// ReservePoolTimeout (reserve_pool_timeout, default 5s) is how long a
	// client waits before the reserve pool is used.
	ReservePoolTimeout time.Duration
	// MaxDBConnections (max_db_connections, default 0) limits server
	// connections per database over all its pools; 0: no limit.
	MaxDBConnections int
	// MaxUserConnections (max_user_connections, default 0) limits server
	// connections per user over all its pools; 0: no limit.
	MaxUserConnections int
	// MaxDBClientConnections (max_db_client_connections, PgBouncer 1.24,
	// default 0) limits client connections per database; 0: no limit.
	MaxDBClientConnections int
	// MaxUserClientConnections (max_user_client_connections, PgBouncer
	// 1.24, default 0) limits client connections per user; 0: no limit.
	MaxUserClientConnections int
	// ServerRoundRobin (server_round_robin, default 0) reuses idle server
	// connections in FIFO order instead of LIFO.
	ServerRoundRobin bool
	// MaxPreparedStatements (max_prepared_statements, default 200 as in
	// PgBouncer 1.24+) is how many protocol-level prepared statements each
	// server connection keeps; 0 turns prepared statement support off.
	MaxPreparedStatements int
	// SessionPinning (session_pinning, a pgpool setting, default 1) keeps a
	// client that holds session state (advisory locks, LISTEN, temporary tables,
	// SQL PREPARE, WITH HOLD cursors, SETs pgpool cannot follow) on its server
	// connection in transaction mode until it releases the state; 0 gives
	// PgBouncer's behaviour, where such state stays on the connection for the next
	// client.
	SessionPinning bool
	// MetricsListen (metrics_listen, a pgpool setting, default empty) is the
	// host:port where pgpool serves Prometheus metrics at /metrics; empty: none.
	MetricsListen string

	// ServerResetQuery (server_reset_query, default "DISCARD ALL") runs
	// before a server connection is reused by another client, in session
	// mode only unless ServerResetQueryAlways; empty: none.
	ServerResetQuery string
	// ServerResetQueryAlways (server_reset_query_always, default 0) runs
	// ServerResetQuery in every pooling mode.
	ServerResetQueryAlways bool
	// ServerCheckQuery (server_check_query, default "select 1" as in
	// PgBouncer 1.18) checks an idle server connection before reuse. Empty:
	// no check. The value EmptyQuery ("<empty>", PgBouncer 1.25's default)
	// means: send an empty query.
	ServerCheckQuery string
	// ServerCheckDelay (server_check_delay, default 30s) is how long a
	// connection may sit idle before ServerCheckQuery is run on it; 0:
	// always check.
	ServerCheckDelay time.Duration
	// ServerFastClose (server_fast_close, default 0) closes session-mode
	// server connections marked for closing (RECONNECT, RELOAD) at the end
	// of the current transaction instead of at the end of the session.
	ServerFastClose bool
	// ServerLifetime (server_lifetime, default 3600s) closes a server
	// connection at release once it is older than this; 0: only once.
	ServerLifetime time.Duration
	// ServerIdleTimeout (server_idle_timeout, default 600s) closes server
	// connections idle longer than this; 0: never.
	ServerIdleTimeout time.Duration
	// ServerConnectTimeout (server_connect_timeout, default 15s) bounds
	// connecting and logging in to a server.
	ServerConnectTimeout time.Duration
	// ServerLoginRetry (server_login_retry, default 15s) is how long to wait
	// after a failed server login before trying again.
	ServerLoginRetry time.Duration
	// QueryTimeout (query_timeout, default 0) cancels queries running
	// longer than this; 0: no limit.
	QueryTimeout time.Duration
	// QueryWaitTimeout (query_wait_timeout, default 120s) disconnects a
	// client that waited this long for a server connection; 0: wait forever.
	QueryWaitTimeout time.Duration
	// QueryWaitNotify (query_wait_notify, PgBouncer 1.25, default 5s) is
	// when a waiting client is sent a notice that it is queued; 0: never.
	QueryWaitNotify time.Duration
	// CancelWaitTimeout (cancel_wait_timeout, PgBouncer 1.19, default 10s)
	// bounds how long a cancel request waits to be forwarded; 0: forever.
	CancelWaitTimeout time.Duration
	// ClientIdleTimeout (client_idle_timeout, default 0) disconnects clients
	// idle longer than this; 0: never.
	ClientIdleTimeout time.Duration
	// ClientLoginTimeout (client_login_timeout, default 60s) disconnects
	// clients that have not logged in within this time; 0: never.
	ClientLoginTimeout time.Duration
	// IdleTransactionTimeout (idle_transaction_timeout, default 0)
	// disconnects clients idle in a transaction longer than this; 0: never.
	IdleTransactionTimeout time.Duration
	// TransactionTimeout (transaction_timeout, PgBouncer 1.25, default 0)
	// disconnects clients whose transaction lasts longer; 0: no limit.
	TransactionTimeout time.Duration
	// AutodbIdleTimeout (autodb_idle_timeout, default 3600s) drops databases
	// created from the "*" entry after they are unused this long.
	AutodbIdleTimeout time.Duration
	// SuspendTimeout (suspend_timeout, default 10s) is how long SUSPEND
	// waits for buffers to drain.
	SuspendTimeout time.Duration

	// IgnoreStartupParameters (ignore_startup_parameters) lists startup
	// parameters that are accepted from clients but not tracked.
	IgnoreStartupParameters []string
	// TrackExtraParameters (track_extra_parameters, PgBouncer 1.20, default
	// IntervalStyle) lists parameters, beyond PgBouncer's fixed set, that
	// are kept in step between client and server.
	TrackExtraParameters []string
	// ApplicationNameAddHost (application_name_add_host, default 0) appends
	// the client's address and port to application_name.
	ApplicationNameAddHost bool

	// ClientTLS is the TLS setup for client connections (client_tls_*);
	// SSLMode defaults to disable.
	ClientTLS TLSConfig
	// ServerTLS is the TLS setup for server connections (server_tls_*);
	// SSLMode defaults to prefer.
	ServerTLS TLSConfig
	// ScramIterations (scram_iterations, PgBouncer 1.25, default 4096) is
	// the iteration count for SCRAM secrets pgpool computes itself.
	ScramIterations int

	// Logfile (logfile, default empty) is the log file; empty: standard error.
	Logfile string
	// Pidfile (pidfile, default empty) is where the process id is written;
	// empty: nowhere.
	Pidfile string
	// OSUser (user, default empty) is the OS user the process switches to after
	// binding its sockets when started as root; -u overrides it.
	OSUser string
	// LogConnections (log_connections, default 1) logs successful logins.
	LogConnections bool
	// LogDisconnections (log_disconnections, default 1) logs disconnections
	// with their reason.
	LogDisconnections bool
	// LogPoolerErrors (log_pooler_errors, default 1) logs errors the pooler
	// sends to clients.
	LogPoolerErrors bool
	// LogStats (log_stats, default 1) logs aggregated statistics every
	// StatsPeriod.
	LogStats bool
	// StatsPeriod (stats_period, default 60s, whole seconds) is how often
	// aggregated statistics are computed.
	StatsPeriod time.Duration
	// Syslog (syslog, default 0) also sends log messages to syslog, with
	// SyslogIdent (syslog_ident, default "pgbouncer") and SyslogFacility
	// (syslog_facility, default "daemon": auth, authpriv, daemon, user,
	// local0 to local7).
	Syslog         bool
	SyslogIdent    string
	SyslogFacility string
	// LogFormat (log_format, a pgpool setting, default "text") is "text" for
	// PgBouncer's log lines or "json" for one JSON object a line.
	LogFormat string
	// Verbose (verbose, default 0) raises log detail; each -v adds one.
	Verbose int

	// PktBuf (pkt_buf, default 4096) is the size of I/O buffers in bytes.
	PktBuf int
	// MaxPacketSize (max_packet_size, default 2147483647) is the largest
	// protocol message accepted, in bytes.
	MaxPacketSize int64
	// TCPKeepalive (tcp_keepalive, default 1) turns on TCP keepalive.
	TCPKeepalive bool
	// TCPKeepcnt (tcp_keepcnt, default 0) is the keepalive probe count; 0:
	// the system's.
	TCPKeepcnt int
	// TCPKeepidle (tcp_keepidle, default 0, whole seconds) is the idle time
	// before probes start; 0: the system's.
	TCPKeepidle time.Duration
	// TCPKeepintvl (tcp_keepintvl, default 0, whole seconds) is the time
	// between probes; 0: the system's.
	TCPKeepintvl time.Duration
	// TCPUserTimeout (tcp_user_timeout, default 0, whole milliseconds) is
	// TCP_USER_TIMEOUT; 0: the system's.
	TCPUserTimeout time.Duration
	// TCPSocketBuffer (tcp_socket_buffer, default 0) sets the socket buffer
	// sizes in bytes; 0: the system's.
	TCPSocketBuffer int
	// DNSMaxTTL (dns_max_ttl, default 15s) is how long a host name's
	// addresses are cached.
	DNSMaxTTL time.Duration
	// DNSNXDomainTTL (dns_nxdomain_ttl, default 15s) is how long a failed
	// lookup is cached.
	DNSNXDomainTTL time.Duration

	// Ignored holds the raw values of PgBouncer settings that pgpool
	// recognises but does not implement, by canonical name (for SHOW CONFIG
	// and diagnostics).
	Ignored map[string]string

	// pos records where each [pgbouncer] setting was last set.
	pos map[string]Pos
	// text records each [pgbouncer] setting's value as the file gives it.
	text map[string]string
}

// SettingInfo is one [pgbouncer] setting PgBouncer has: its name, its default as
// PgBouncer shows it, and whether pgpool implements it.
type SettingInfo struct {
	Name, Default string
	Implemented   bool
}

// KnownSettings lists every [pgbouncer] setting, sorted by name.
func KnownSettings() []SettingInfo {
	out := make([]SettingInfo, 0, len(settings))
	for _, s := range settings {
		out = append(out, SettingInfo{Name: s.name, Default: s.def, Implemented: s.set != nil})
	}
	slices.SortFunc(out, func(a, b SettingInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// SettingText returns a [pgbouncer] setting's value as the file gave it, and whether
// the file set it.
func (c *Config) SettingText(name string) (string, bool) {
	v, ok := c.text[name]
	return v, ok
}

// EmptyQuery is the ServerCheckQuery value that asks for an empty query
// to be sent as the check, as in PgBouncer 1.25.
const EmptyQuery = "<empty>"

// TLSConfig is one side's TLS settings, client_tls_* or server_tls_*. The
// *_file fields are paths; empty means none (for CAFile: the system's CA set).
type TLSConfig struct {
	SSLMode      SSLMode // *_tls_sslmode
	KeyFile      string  // *_tls_key_file
	CertFile     string  // *_tls_cert_file
	CAFile       string  // *_tls_ca_file
	Protocols    string  // *_tls_protocols, default "secure" (TLS 1.2 and 1.3)
	Ciphers      string  // *_tls_ciphers, default "fast" (PgBouncer 1.18)
	TLS13Ciphers string  // *_tls13_ciphers (PgBouncer 1.25); empty: the library's
}

// Database is one [databases] entry: `name = key=value ...`. Pointer fields
// are nil when the entry does not set them, which means "use the
// [pgbouncer] setting"; use Config's Effective* helpers rather than reading
// them directly.
type Database struct {
	// Name is the name clients connect to.
	Name string
	// Pos is where the entry was read (the "*" line for fallback-derived
	// entries).
	Pos Pos
	// Auto is true for entries derived from the "*" fallback by
	// (*Config).Database.
	Auto bool

	// Host (host) is a host name, an IP address, a Unix socket directory
	// (starting with "/", or "@" for the abstract namespace), or a comma
	// separated list of them. Empty: the Unix socket in UnixSocketDir.
	Host string
	// Port (port, default 5432) is the server port.
	Port int
	// DBName (dbname, default Name) is the database name on the server.
	DBName string
	// User (user) forces the server login user; empty: the client's user.
	User string
	// Password (password) is the forced user's password; empty: taken from
	// the auth file.
	Password string
	// AuthUser (auth_user) overrides [pgbouncer] auth_user for this database.
	AuthUser string
	// AuthDBName (auth_dbname, PgBouncer 1.19) overrides auth_dbname.
	AuthDBName string
	// AuthQuery (auth_query, PgBouncer 1.22) overrides auth_query.
	AuthQuery string
	// ClientEncoding (client_encoding) is sent in the server startup packet;
	// empty: not sent.
	ClientEncoding string
	// DateStyle (datestyle) is sent in the server startup packet.
	DateStyle string
	// TimeZone (timezone) is sent in the server startup packet.
	TimeZone string
	// ApplicationName (application_name) is sent in the server startup packet.
	ApplicationName string
	// ConnectQuery (connect_query) runs once on each new server connection;
	// empty: none.
	ConnectQuery string

	// PoolMode (pool_mode) overrides the global pool mode; PoolModeInherit:
	// not set.
	PoolMode PoolMode
	// PoolSize (pool_size) overrides default_pool_size.
	PoolSize *int
	// MinPoolSize (min_pool_size) overrides min_pool_size.
	MinPoolSize *int
	// ReservePoolSize (reserve_pool, or reserve_pool_size since PgBouncer
	// 1.24) overrides reserve_pool_size.
	ReservePoolSize *int
	// MaxDBConnections (max_db_connections) overrides max_db_connections;
	// as in PgBouncer, 0 means "use the global setting".
	MaxDBConnections *int
	// MaxDBClientConnections (max_db_client_connections, PgBouncer 1.24)
	// overrides the global one; 0 means "use the global setting".
	MaxDBClientConnections *int
	// ServerLifetime (server_lifetime, PgBouncer 1.23) overrides
	// server_lifetime; 0 means "use the global setting".
	ServerLifetime *time.Duration
	// QueryWaitTimeout (query_wait_timeout, PgBouncer 1.25) overrides
	// query_wait_timeout.
	QueryWaitTimeout *time.Duration
	// LoadBalanceHosts (load_balance_hosts, PgBouncer 1.24) says how a host
	// list is used; LoadBalanceUnset: round-robin.
	LoadBalanceHosts LoadBalanceHosts
}

// User is one [users] entry: `name = key=value ...`. Nil pointer fields and
// PoolModeInherit mean "not set here".
type User struct {
	// Name is the user name.
	Name string
	// Pos is where the entry was read.
	Pos Pos
	// PoolMode (pool_mode) overrides the database's and the global mode.
	PoolMode PoolMode
	// PoolSize (pool_size, PgBouncer 1.23) overrides the database's and the
	// global pool size.
	PoolSize *int
	// ReservePoolSize (reserve_pool_size, PgBouncer 1.24) overrides the
	// database's and the global reserve pool size.
	ReservePoolSize *int
	// MaxUserConnections (max_user_connections) overrides the global one;
	// as in PgBouncer, 0 means "use the global setting".
	MaxUserConnections *int
	// MaxUserClientConnections (max_user_client_connections, PgBouncer
	// 1.24); 0 means "use the global setting".
	MaxUserClientConnections *int
	// QueryTimeout (query_timeout, PgBouncer 1.24) overrides query_timeout.
	QueryTimeout *time.Duration
	// IdleTransactionTimeout (idle_transaction_timeout, PgBouncer 1.24).
	IdleTransactionTimeout *time.Duration
	// TransactionTimeout (transaction_timeout, PgBouncer 1.25).
	TransactionTimeout *time.Duration
	// QueryWaitTimeout (query_wait_timeout, PgBouncer 1.25).
	QueryWaitTimeout *time.Duration
	// ClientIdleTimeout (client_idle_timeout, PgBouncer 1.24).
	ClientIdleTimeout *time.Duration
}
