package admin

import "time"

// Snapshot is the pooler's state at one moment, as the console and the metrics
// endpoint read it. The pooler builds a new one for each use by copying fields of
// its objects (each under its own lock, briefly, or from atomics); nothing reads or
// changes a Snapshot's contents after it has been handed over.
type Snapshot struct {
	Taken   time.Time // when the snapshot was taken: waits are measured up to it
	Version string    // SHOW VERSION's text

	ListenPort int  // the port of the first TCP listener, 0 if none
	Paused     bool // PAUSE without a database is in force
	Suspended  bool // SUSPEND is in force

	// Clients are the client connections past login, the console's own included;
	// LoginClients counts those still logging in.
	Clients      []Client
	LoginClients int

	// Pools are the pooler's pools; a pool being closed has Closed set and shows in
	// SHOW POOLS and SHOW SERVERS no more, but its counters still count.
	Pools []Pool

	// Databases are the databases SHOW DATABASES lists besides the console's: those
	// configured and those reached through the "*" entry that have a pool.
	Databases []Database
	// Users are the user names SHOW USERS lists besides the console's own.
	Users []User
	// Config are the settings of SHOW CONFIG, in order.
	Config []Setting

	// Console is the console's own traffic, reported as database "pgbouncer".
	Console Totals
	// Since is the start of the interval the averages of SHOW STATS cover, with every
	// database's counters then.
	Since Sample

	// Sizes are the sizes in bytes of the pooler's objects, for SHOW MEM.
	Sizes Sizes
}

// Client is one client connection.
type Client struct {
	ID uint64
	// User and Database are the names the client logged in with.
	User, Database string
	// Console: a client of the admin console; it has no pool.
	Console bool
	// PoolDatabase and PoolUser name the client's pool.
	PoolDatabase, PoolUser string
	// Waiting: the client waits for a server connection, since WaitStart (zero if
	// not known).
	Waiting   bool
	WaitStart time.Time

	Addr      string // remote host, "unix" for a unix socket
	Port      int
	LocalAddr string
	LocalPort int

	ConnectedAt time.Time
	RequestAt   time.Time // the latest request; ConnectedAt before the first
	ServerID    uint64    // the server connection bound to it, 0 for none
	TLS         string    // "version/cipher", "" without TLS
	AppName     string
	Pinned      string // why the client keeps its server connection, "" if it does not
}

// Pool is one (database, user) pool.
type Pool struct {
	Database, User string
	Mode           string // pool_mode
	Closed         bool
	// Opening counts server connections being dialled, not yet in Servers.
	Opening int
	Servers []Server
	Stats   Totals
	// Pinned counts the clients pinned to their server connection now.
	Pinned int64
	// Wait, Xact and Query are the distributions of client wait, transaction and
	// query times.
	Wait, Xact, Query Histogram
}

// Server states as SHOW SERVERS names them.
const (
	ServerActive = "active"
	ServerIdle   = "idle"
	ServerUsed   = "used"
	ServerLogin  = "login"
	ServerClosed = "closed"
)

// Server is one server connection.
type Server struct {
	ID    uint64
	User  string // the user it logged in to PostgreSQL as
	State string // ServerActive, ...
	Addr  string
	Port  int

	LocalAddr string
	LocalPort int
	CreatedAt time.Time
	LastUsed  time.Time
	// CloseNeeded: RECONNECT or a change of server settings asked for it to close.
	CloseNeeded bool
	ClientID    uint64 // the client it is bound to, 0 for none
	PID         int64  // PostgreSQL's backend process id
	TLS         string
	AppName     string
}

// Database is one row of SHOW DATABASES.
type Database struct {
	Name           string
	Host           string
	Port           int
	ServerDatabase string // the database name on the server
	ForceUser      string // "" when none
	PoolSize       int
	MinPoolSize    int
	ReservePool    int
	PoolMode       string // "" when the database has none of its own
	MaxConnections int
	// CurrentConnections counts its server connections across pools.
	CurrentConnections int64
	Paused, Disabled   bool
}

// User is one row of SHOW USERS.
type User struct {
	Name     string
	PoolMode string // "" when the user has none of its own
}

// Setting is one row of SHOW CONFIG.
type Setting struct {
	Key, Value, Default string
	Changeable          bool
	// OwnerOnly: the setting decides who may log in, and only pgpool's own OS user
	// (Caller.Owner) may change it from the console.
	OwnerOnly bool
}

// Sizes are object sizes in bytes.
type Sizes struct {
	User, Database, Pool, Server, Client int
}

// Totals are the counters SHOW STATS reports for a pool or database.
type Totals struct {
	Xacts, Queries  int64
	Received, Sent  int64 // bytes from clients, bytes to clients
	XactUS, QueryUS int64 // microseconds
	WaitUS          int64 // microseconds clients waited for a server connection
	ServersOpened   int64 // server connections opened
	// Prepared statements, counted while pgpool tracks them (max_prepared_statements
	// above zero): named Parses by clients, Parses pgpool sent to server connections,
	// and Binds of clients' named statements.
	ClientParses, ServerParses, Binds int64
}

// Plus returns the sum of t and u.
func (t Totals) Plus(u Totals) Totals {
	return Totals{
		Xacts: t.Xacts + u.Xacts, Queries: t.Queries + u.Queries,
		Received: t.Received + u.Received, Sent: t.Sent + u.Sent,
		XactUS: t.XactUS + u.XactUS, QueryUS: t.QueryUS + u.QueryUS, WaitUS: t.WaitUS + u.WaitUS,
		ServersOpened: t.ServersOpened + u.ServersOpened,
		ClientParses:  t.ClientParses + u.ClientParses, ServerParses: t.ServerParses + u.ServerParses,
		Binds: t.Binds + u.Binds,
	}
}

// Histogram is a distribution of durations: Counts[i] observations fell at or
// below Bounds[i] seconds and above the bound before (not cumulative); Count is the
// total, those above the last bound included.
type Histogram struct {
	Bounds []float64 // upper bounds in seconds, ascending; shared, never changed
	Counts []uint64
	Count  uint64
	SumUS  int64 // the sum of the observations in microseconds
}

// Sample is every database's counters at one moment.
type Sample struct {
	At         time.Time
	ByDatabase map[string]Totals
}
