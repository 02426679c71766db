package nutyml

import (
	"strconv"

	"github.com/poolsuite/poolsuite/sharding"
)

// Validate checks what twemproxy checks once a file is read, and kvproxy's additions:
// there is at least one pool; every pool has listen and servers; pool names and listen
// addresses are unique; server names are unique within a pool; weights are at least 1;
// server_connections is not 0; redis_auth, server_password and server_passwords are only
// used in redis pools; hash names a known hash and hash_tag has two characters;
// read_policy replica has a replica for every server; metrics_listen is "host:port".
//
// It returns nil or an Errors listing every problem. Parse calls it; call it on a Config
// built or changed in code.
func (c *Config) Validate() error {
	var pr problems
	c.validate(&pr)
	return pr.err()
}

func (c *Config) validate(pr *problems) {
	if len(c.Pools) == 0 && len(pr.list) == 0 {
		pr.add(0, "", "", ErrMissing, "no pools")
	}
	names := map[string]bool{}
	listens := map[string]string{}
	for _, p := range c.Pools {
		if names[p.Name] {
			pr.add(p.Line, p.Name, "", ErrDuplicate, "another pool has the same name")
		}
		names[p.Name] = true
		if p.Listen.Raw != "" {
			if other, dup := listens[p.Listen.Raw]; dup {
				pr.add(p.keyLine("listen"), p.Name, "listen", ErrDuplicate, "pool %q has the same listen address %q", other, p.Listen.Raw)
			} else {
				listens[p.Listen.Raw] = p.Name
			}
		}
		p.validate(pr)
	}
	if c.MetricsListen != "" {
		if _, _, ok := splitHostPort(c.MetricsListen); !ok {
			pr.add(c.MetricsListenLine, "", "metrics_listen", ErrInvalidValue, "%q is not \"host:port\"", c.MetricsListen)
		}
		if pool, dup := listens[c.MetricsListen]; dup {
			pr.add(c.MetricsListenLine, "", "metrics_listen", ErrDuplicate, "pool %q listens on %q too", pool, c.MetricsListen)
		}
	}
}

// keyLine returns the line of key, or of the pool when the key is absent.
func (p *Pool) keyLine(key string) int {
	if l := p.lines[key]; l != 0 {
		return l
	}
	return p.Line
}

func (p *Pool) validate(pr *problems) {
	bad := func(key string, sentinel error, format string, args ...any) {
		pr.add(p.keyLine(key), p.Name, key, sentinel, format, args...)
	}
	// A key whose value did not parse is recorded in p.lines and already reported.
	if p.Listen.Raw == "" && p.lines["listen"] == 0 {
		bad("listen", ErrMissing, "is missing")
	} else if p.Listen.Raw != "" && !p.Listen.Unix && (p.Listen.Port < 1 || p.Listen.Port > 65535) {
		bad("listen", ErrInvalidValue, "invalid port %d", p.Listen.Port)
	}
	if _, err := sharding.LookupHash(p.Hash); err != nil {
		bad("hash", ErrInvalidValue, "%q is not a valid hash", p.Hash)
	}
	if p.HashTag != "" && len(p.HashTag) != 2 {
		bad("hash_tag", ErrInvalidValue, "%q is not a valid hash tag string with two characters", p.HashTag)
	}
	if p.Distribution > sharding.Random {
		bad("distribution", ErrInvalidValue, "unknown distribution %v", p.Distribution)
	}
	for _, f := range []struct {
		key      string
		negative bool
	}{
		{"timeout", p.Timeout < 0},
		{"backlog", p.Backlog < 0},
		{"client_connections", p.ClientConnections < 0},
		{"redis_db", p.RedisDB < 0},
		{"server_retry_timeout", p.ServerRetryTimeout < 0},
		{"server_failure_limit", p.ServerFailureLimit < 0},
		{"client_timeout", p.ClientTimeout < 0},
		{"client_write_timeout", p.ClientWriteTimeout < 0},
	} {
		if f.negative {
			bad(f.key, ErrInvalidValue, "is negative")
		}
	}
	if p.ServerConnections == 0 {
		bad("server_connections", ErrInvalidValue, "cannot be 0")
	} else if p.ServerConnections < 0 {
		bad("server_connections", ErrInvalidValue, "is negative")
	}
	if !p.Redis {
		if p.RedisAuth != "" {
			bad("redis_auth", ErrInvalidValue, "is only valid for a redis pool")
		}
		if p.ServerPassword != "" {
			bad("server_password", ErrInvalidValue, "is only valid for a redis pool")
		}
	}
	if p.ReadPolicy > sharding.ReadPreferReplica {
		bad("read_policy", ErrInvalidValue, "unknown read policy %v", p.ReadPolicy)
	}
	p.validateServers(pr)
}

func (p *Pool) validateServers(pr *problems) {
	bad := func(line int, key string, sentinel error, format string, args ...any) {
		if line == 0 {
			line = p.keyLine(key)
		}
		pr.add(line, p.Name, key, sentinel, format, args...)
	}
	if len(p.Servers) == 0 && p.lines["servers"] == 0 {
		bad(0, "servers", ErrMissing, "the pool has no servers")
	}
	names := map[string]bool{}
	passwords := false
	for _, s := range p.Servers {
		if names[s.Name] {
			bad(s.Line, "servers", ErrDuplicate, "another server has the name %q", s.Name)
		}
		names[s.Name] = true
		if s.Weight == 0 {
			bad(s.Line, "servers", ErrInvalidValue, "server %q has a zero weight", s.Name)
		}
		if !s.Unix && (s.Port < 1 || s.Port > 65535) {
			bad(s.Line, "servers", ErrInvalidValue, "server %q has an invalid port %s", s.Name, strconv.Itoa(s.Port))
		}
		if p.ReadPolicy == sharding.ReadReplica && len(s.Replicas) == 0 {
			bad(p.keyLine("read_policy"), "read_policy", ErrInvalidValue, "is replica but server %q has no replicas", s.Name)
		}
		if s.Password != "" {
			passwords = true
		}
	}
	if passwords && !p.Redis {
		bad(0, "server_passwords", ErrInvalidValue, "is only valid for a redis pool")
	}
}
