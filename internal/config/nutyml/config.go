package nutyml

import (
	"os"
	"time"

	"github.com/poolsuite/poolsuite/sharding"
)

// twemproxy's defaults (src/nc_conf.h).
const (
	DefaultHash               = sharding.DefaultHash
	DefaultDistribution       = sharding.Ketama
	DefaultBacklog            = 512
	DefaultServerConnections  = 1
	DefaultServerRetryTimeout = 30 * time.Second
	DefaultServerFailureLimit = 2
	DefaultRedisDB            = 0
)

// kvproxy's defaults for its own keys.
const (
	// DefaultClientWriteTimeout is client_write_timeout when the file leaves it out:
	// a client that accepts no reply for this long is closed.
	DefaultClientWriteTimeout = 30 * time.Second
)

// Config is a whole nutcracker.yml.
type Config struct {
	// Pools are the pools in the order of the file.
	Pools []*Pool
	// MetricsListen is the top-level metrics_listen (kvproxy's): "host:port" for
	// Prometheus metrics, "" if absent.
	MetricsListen string
	// MetricsListenLine is the line of metrics_listen, 0 if absent.
	MetricsListenLine int
}

// Pool is one pool. Fields hold twemproxy's defaults for keys the file leaves out.
type Pool struct {
	// Name is the pool's name, the top-level key.
	Name string
	// Line is the line of the pool's name.
	Line int

	// Listen is where clients connect (listen:, required).
	Listen Listen
	// Hash is the name of the key hash function, one accepted by sharding.LookupHash
	// (hash:, default fnv1a_64).
	Hash string
	// HashTag is "" or two bytes (hash_tag:).
	HashTag string
	// Distribution is the key distribution (distribution:, default ketama).
	Distribution sharding.Distribution
	// Timeout is how long to wait for a server's reply (timeout:, in milliseconds in the
	// file). It is meaningful only when TimeoutSet: twemproxy waits forever when the key
	// is absent, and the proxy picks its own default then. When set, 0 means no timeout,
	// as in twemproxy.
	Timeout time.Duration
	// TimeoutSet reports whether timeout: was given.
	TimeoutSet bool
	// Backlog is the listen backlog (backlog:, default 512).
	Backlog int
	// ClientConnections is client_connections:, which twemproxy reads and ignores
	// (0 if absent).
	ClientConnections int
	// TCPKeepalive enables TCP keepalive on server connections (tcpkeepalive:).
	TCPKeepalive bool
	// ReusePort sets SO_REUSEPORT on the listener (reuseport:).
	ReusePort bool
	// Preconnect connects to every server at start (preconnect:).
	Preconnect bool
	// Redis is true for a Redis pool, false for memcached (redis:).
	Redis bool
	// RedisAuth is the password clients must send (redis_auth:, "" for none). twemproxy
	// also sends it to servers; see ServerAuth.
	RedisAuth string
	// RedisDB is the database selected on server connections (redis_db:, default 0).
	RedisDB int
	// ServerConnections is the number of connections per server (server_connections:,
	// default 1, never 0).
	ServerConnections int
	// AutoEjectHosts ejects failing servers from placement (auto_eject_hosts:).
	AutoEjectHosts bool
	// ServerRetryTimeout is how long an ejected server stays out
	// (server_retry_timeout:, milliseconds in the file, default 30s).
	ServerRetryTimeout time.Duration
	// ServerFailureLimit is the number of consecutive failures that eject a server
	// (server_failure_limit:, default 2).
	ServerFailureLimit int
	// Servers are the servers in twemproxy's order (see sharding.SortServers), with
	// their replicas and passwords.
	Servers []Server

	// ServerPassword is kvproxy's server_password: the password sent to servers, ""
	// if absent (then RedisAuth is sent, as twemproxy does).
	ServerPassword string
	// ReadPolicy is kvproxy's read_policy (default primary).
	ReadPolicy sharding.ReadPolicy
	// ClientTimeout is kvproxy's client_timeout: a client connection idle (no request
	// being served) this long is closed. 0, the default, means never, as in twemproxy.
	ClientTimeout time.Duration
	// ClientWriteTimeout is kvproxy's client_write_timeout: a client that does not
	// accept its replies for this long is closed (default DefaultClientWriteTimeout; 0
	// means never, as in twemproxy).
	ClientWriteTimeout time.Duration

	// lines holds the line of each key present in the file.
	lines map[string]int
}

// Listen is a parsed listen: value.
type Listen struct {
	// Raw is the value as written.
	Raw string
	// Unix reports whether it is a unix socket (the value starts with '/').
	Unix bool
	// Host and Port are the TCP address; Host is the socket path for a unix socket and
	// Port is then 0.
	Host string
	Port int
	// Perm is the unix socket's permissions, 0 if not given (leave them as created).
	Perm os.FileMode
}

// Server is one entry of servers:, with kvproxy's per-server settings.
type Server struct {
	// ServerSpec holds the name (what is hashed), address and weight.
	sharding.ServerSpec
	// Line is the line of the entry.
	Line int
	// Password is the server's entry in server_passwords, "" if none; Pool.PasswordFor
	// returns the password to send to the server and its replicas.
	Password string
	// Replicas are the server's replicas, in the order of the file.
	Replicas []Replica
}

// Replica is a replica of a server.
type Replica struct {
	// Unix reports whether Addr is a unix socket path.
	Unix bool
	// Addr is "host:port" (IPv6 hosts in brackets) or the socket path, for net.Dial.
	Addr string
	// Line is the line of the entry.
	Line int
}

// Network returns "unix" or "tcp", for net.Dial.
func (r Replica) Network() string {
	if r.Unix {
		return "unix"
	}
	return "tcp"
}

// Network returns "unix" or "tcp", for net.Listen.
func (l Listen) Network() string {
	if l.Unix {
		return "unix"
	}
	return "tcp"
}

// newPool returns a pool holding twemproxy's defaults: the one place they are set.
func newPool(name string, line int) *Pool {
	return &Pool{
		Name:               name,
		Line:               line,
		Hash:               DefaultHash,
		Distribution:       DefaultDistribution,
		Backlog:            DefaultBacklog,
		RedisDB:            DefaultRedisDB,
		ServerConnections:  DefaultServerConnections,
		ServerRetryTimeout: DefaultServerRetryTimeout,
		ServerFailureLimit: DefaultServerFailureLimit,
		ReadPolicy:         sharding.ReadPrimary,
		ClientWriteTimeout: DefaultClientWriteTimeout,
		lines:              map[string]int{},
	}
}

// ServerAuth returns the password to send to servers that have no password of their own:
// ServerPassword if set, else RedisAuth (twemproxy sends redis_auth to servers).
func (p *Pool) ServerAuth() string {
	if p.ServerPassword != "" {
		return p.ServerPassword
	}
	return p.RedisAuth
}

// PasswordFor returns the password to send to server s and its replicas: its own
// Password if set, else ServerAuth.
func (p *Pool) PasswordFor(s *Server) string {
	if s.Password != "" {
		return s.Password
	}
	return p.ServerAuth()
}

// KeyLine returns the line where key was given in the pool, 0 if it was not.
func (p *Pool) KeyLine(key string) int { return p.lines[key] }

// Shards returns the servers as sharding sees them, in the order of Servers.
func (p *Pool) Shards() []sharding.Shard {
	shards := make([]sharding.Shard, len(p.Servers))
	for i, s := range p.Servers {
		shards[i] = sharding.Shard{Name: s.Name, Weight: s.Weight, Replicas: len(s.Replicas)}
	}
	return shards
}

// ShardingConfig returns the placement and ejection settings of the pool for
// sharding.NewPool. It fails only if Hash is unknown (Validate reports that).
func (p *Pool) ShardingConfig() (sharding.PoolConfig, error) {
	h, err := sharding.LookupHash(p.Hash)
	if err != nil {
		return sharding.PoolConfig{}, err
	}
	return sharding.PoolConfig{
		Distribution: p.Distribution,
		Hash:         h,
		HashTag:      p.HashTag,
		AutoEject:    p.AutoEjectHosts,
		FailureLimit: p.ServerFailureLimit,
		RetryTimeout: p.ServerRetryTimeout,
	}, nil
}
