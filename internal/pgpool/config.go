package pgpool

import (
	"crypto/tls"
	"time"

	"github.com/poolsuite/poolsuite/protocol/postgres/wire"
)

// Config is the pooler's configuration, with PgBouncer's meaning for each setting.
// cmd/pgpool fills it from pgbouncer.ini; zero values mean what the field says, and
// Defaults fills PgBouncer's defaults.
type Config struct {
	// AuthType is how clients log in: "scram-sha-256", "md5", "plain", "trust", or
	// "cert" (a client certificate, verified against client_tls_ca_file, whose Common
	// Name is the user name; the user must be known, from Userlist or auth_query).
	AuthType string
	// Userlist maps user names to secrets (auth_file): plain, md5 or SCRAM.
	Userlist map[string]string
	// AuthUser and AuthQuery look up secrets of users absent from Userlist.
	AuthUser  string
	AuthQuery string
	// AdminUsers may run every admin console command; StatsUsers may run SHOW.
	AdminUsers []string
	StatsUsers []string

	PoolMode           PoolMode
	MaxClientConn      int
	DefaultPoolSize    int
	MinPoolSize        int
	ReservePoolSize    int
	ReservePoolTimeout time.Duration
	MaxDBConnections   int // 0: no limit
	MaxUserConnections int // 0: no limit

	ServerResetQuery       string
	ServerResetQueryAlways bool
	ServerCheckQuery       string
	ServerCheckDelay       time.Duration
	ServerLifetime         time.Duration // 0: unlimited
	ServerIdleTimeout      time.Duration // 0: never
	ServerConnectTimeout   time.Duration
	ServerLoginRetry       time.Duration
	// ServerFastClose (server_fast_close): in session mode, a server connection that
	// RECONNECT or a reload of its connection settings asked to close is closed, with
	// its client, as soon as it is idle outside a transaction instead of when the
	// client leaves.
	ServerFastClose bool

	QueryWaitTimeout       time.Duration // 0: wait forever
	QueryTimeout           time.Duration // 0: off
	IdleTransactionTimeout time.Duration // 0: off
	ClientIdleTimeout      time.Duration // 0: off
	ClientLoginTimeout     time.Duration // 0: off
	CancelWaitTimeout      time.Duration
	// WriteTimeout bounds a write to a client or server socket that makes no
	// progress: a client that stops reading its results, or a server that stops
	// reading requests, is closed after about this long instead of holding its
	// connection for ever. 0: no limit (PgBouncer's behaviour).
	WriteTimeout time.Duration

	// SuspendTimeout bounds how long an online restart waits for clients to reach a
	// point where they can be handed over; 0: 10 s.
	SuspendTimeout time.Duration

	// Verbose is the verbose setting: 0 logs at info level, 1 and more at debug
	// level. The Pooler only reports it (SHOW CONFIG) and passes console changes to the
	// function set with SetVerboseFunc; whoever made the logger applies it.
	Verbose int
	// LogConnections (log_connections) logs each login attempt ("login attempt:
	// db=... user=... tls=...") and each new server connection ("new connection to
	// server").
	LogConnections bool
	// LogDisconnections (log_disconnections) logs why each client and server
	// connection closes ("closing because: <reason> (age=<N>s)").
	LogDisconnections bool
	// LogPoolerErrors (log_pooler_errors) logs each error pgpool itself sends to a
	// client ("pooler error: <message>").
	LogPoolerErrors bool
	// LogStats (log_stats) logs a line of averages over all pools every
	// StatsPeriod ("stats: N xacts/s, N queries/s, in N B/s, out N B/s, xact N us,
	// query N us, wait N us").
	LogStats bool
	// StatsPeriod (stats_period) is the period of the stats line; 0: 60 seconds.
	StatsPeriod time.Duration

	// IgnoreStartupParameters are startup parameters accepted and not passed on.
	IgnoreStartupParameters []string
	// MaxPacketSize (max_packet_size) bounds a client message, in bytes including its
	// length field: a client that declares a longer one gets a FATAL 08P01 error and
	// is closed. Messages longer than the read buffer are streamed, not held whole,
	// except a Parse, which pgpool reads whole: this bounds what one costs. 0 means
	// the default, 2147483647 as in PgBouncer.
	MaxPacketSize int

	// ClientTLSMode is client_tls_sslmode: disable, allow, prefer, require, verify-ca,
	// verify-full. ClientTLS holds the certificate (required unless disable). Clients
	// on a unix socket are served without TLS whatever the mode, as by PgBouncer.
	ClientTLSMode string
	ClientTLS     *tls.Config
	// ClientTLSFiles are the other client_tls_* settings, from which the admin
	// console's SET rebuilds ClientTLS (BuildClientTLS).
	ClientTLSFiles TLSFiles
	// ServerTLSMode is server_tls_sslmode; ServerTLS the roots and client certificate.
	ServerTLSMode string
	ServerTLS     *tls.Config
	// ServerTLSFiles are the other server_tls_* settings (BuildServerTLS).
	ServerTLSFiles TLSFiles

	// MaxPreparedStatements bounds the protocol-level prepared statements kept per
	// server connection in transaction mode; 0 turns their tracking off.
	MaxPreparedStatements int

	// DisableSessionPinning turns off pinning clients that hold session state (advisory
	// locks, LISTEN) to their server connection in transaction mode: PgBouncer's
	// behaviour, where such state leaks onto whichever client gets the connection next.
	DisableSessionPinning bool

	// MetricsListen is the host:port where the Pooler serves Prometheus metrics at
	// /metrics from New until Shutdown; empty: none. A change takes a restart.
	MetricsListen string

	// Databases maps names clients connect to onto servers; "*" is the fallback.
	Databases map[string]*Database
	// Users holds per-user settings ([users]).
	Users map[string]*User

	// FileSettings are the configuration file's [pgbouncer] settings, each as the file
	// gives it or its default: SHOW CONFIG lists those pgpool has no setting of its
	// own for, read-only, so it shows every setting PgBouncer has.
	FileSettings []FileSetting
}

// Database is one [databases] entry.
type Database struct {
	// Host is a host name, IP address, or unix socket directory ("/..."), or a
	// comma-separated list of them; default localhost. New server connections go to
	// the hosts of a list in turn (see LoadBalanceDisable).
	Host     string
	Port     int    // default 5432
	DBName   string // database on the server; empty: the name the client asked for
	User     string // forced server user; empty: the client's user
	Password string // password for User (or for the client's user)

	PoolSize         int       // 0: DefaultPoolSize
	MinPoolSize      int       // 0: MinPoolSize
	ReservePool      int       // -1: ReservePoolSize
	PoolMode         *PoolMode // nil: the user's or the global mode
	MaxDBConnections int       // 0: MaxDBConnections
	// LoadBalanceDisable (load_balance_hosts=disable) keeps new server connections
	// on the first host of the list that works, moving on only when a connect
	// fails; otherwise (round-robin) each new connection takes the next host.
	LoadBalanceDisable bool
	// AuthUser overrides Config.AuthUser for auth_query on this database.
	AuthUser string
	// ConnectQuery runs once on each new server connection after login, before a
	// client gets it; an error it raises is logged and otherwise ignored.
	ConnectQuery string
	// StartupParams are sent to the server at connect (client_encoding, datestyle,
	// timezone, application_name).
	StartupParams map[string]string
}

// User is one [users] entry.
type User struct {
	PoolMode           *PoolMode
	MaxUserConnections int // 0: MaxUserConnections
}

// FileSetting is one setting of the configuration file, for SHOW CONFIG.
type FileSetting struct {
	Name, Value, Default string
}

// Defaults returns a Config with PgBouncer's defaults, pool_mode session included, so a
// pgbouncer.ini means the same to pgpool as to PgBouncer (cmd/pgpool checks that these
// agree with what an empty pgbouncer.ini gives). Transaction pooling, what pgpool is
// built for, is asked for with pool_mode = transaction.
func Defaults() *Config {
	return &Config{
		AuthType:              "md5",
		AuthQuery:             "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
		PoolMode:              PoolSession,
		MaxClientConn:         100,
		DefaultPoolSize:       20,
		ReservePoolTimeout:    5 * time.Second,
		ServerResetQuery:      "DISCARD ALL",
		ServerCheckQuery:      "select 1",
		ServerCheckDelay:      30 * time.Second,
		ServerLifetime:        3600 * time.Second,
		ServerIdleTimeout:     600 * time.Second,
		ServerConnectTimeout:  15 * time.Second,
		ServerLoginRetry:      15 * time.Second,
		QueryWaitTimeout:      120 * time.Second,
		ClientLoginTimeout:    60 * time.Second,
		SuspendTimeout:        10 * time.Second,
		CancelWaitTimeout:     10 * time.Second,
		WriteTimeout:          60 * time.Second,
		LogConnections:        true,
		LogDisconnections:     true,
		LogPoolerErrors:       true,
		LogStats:              true,
		StatsPeriod:           60 * time.Second,
		MaxPacketSize:         wire.DefaultMaxMessageSize,
		ClientTLSMode:         "disable",
		ClientTLSFiles:        TLSFiles{Protocols: "secure", Ciphers: "fast"},
		ServerTLSMode:         "prefer",
		ServerTLSFiles:        TLSFiles{Protocols: "secure", Ciphers: "fast"},
		MaxPreparedStatements: 200,
		Databases:             map[string]*Database{},
		Users:                 map[string]*User{},
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isAdmin reports whether user may use every admin console command.
func (c *Config) isAdmin(user string) bool { return contains(c.AdminUsers, user) }

// isStats reports whether user may run the admin console's SHOW commands.
func (c *Config) isStats(user string) bool {
	return contains(c.StatsUsers, user) || c.isAdmin(user)
}

// database finds the entry for name, falling back to "*".
func (c *Config) database(name string) (*Database, bool) {
	if d, ok := c.Databases[name]; ok {
		return d, true
	}
	if d, ok := c.Databases["*"]; ok {
		return d, true
	}
	return nil, false
}
