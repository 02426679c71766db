package nutyml

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/sharding"
)

func mustParse(t *testing.T, data string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func TestLoadTwemproxyFile(t *testing.T) {
	cfg, err := Load("testdata/twemproxy.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pools) != 4 {
		t.Fatalf("%d pools", len(cfg.Pools))
	}
	web, sessions, memcache, socket := cfg.Pools[0], cfg.Pools[1], cfg.Pools[2], cfg.Pools[3]

	if web.Name != "web" || web.Line != 2 || web.Listen.Addr() != "127.0.0.1:22121" ||
		web.Hash != "fnv1a_64" || web.Distribution != sharding.Ketama || !web.AutoEjectHosts ||
		!web.Redis || web.RedisAuth != "hunter2" || web.ServerAuth() != "hunter2" || web.RedisDB != 3 ||
		web.ServerRetryTimeout != 2*time.Second || web.ServerFailureLimit != 1 || web.TimeoutSet {
		t.Errorf("web = %+v", web)
	}
	if web.KeyLine("redis_db") != 9 {
		t.Errorf("redis_db on line %d", web.KeyLine("redis_db"))
	}

	if sessions.Hash != "murmur" || sessions.HashTag != "{}" || sessions.Distribution != sharding.Modula ||
		!sessions.TimeoutSet || sessions.Timeout != 400*time.Millisecond || !sessions.TCPKeepalive ||
		sessions.ServerConnections != 4 {
		t.Errorf("sessions = %+v", sessions)
	}
	// Servers are in twemproxy's order, not the file's.
	var names []string
	for _, s := range sessions.Servers {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "s1,s2,s3,s4" {
		t.Errorf("sessions servers %v", names)
	}
	if s := sessions.Servers[0]; s.Weight != 2 || s.Addr() != "127.0.0.1:6380" || s.Line != 26 {
		t.Errorf("s1 = %+v", s)
	}

	if memcache.Distribution != sharding.Random || !memcache.TimeoutSet || memcache.Timeout != 0 ||
		memcache.Backlog != 1024 || memcache.ClientConnections != 100 || !memcache.Preconnect || memcache.Redis {
		t.Errorf("memcache = %+v", memcache)
	}
	names = nil
	for _, s := range memcache.Servers {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "127.0.0.1,127.0.0.1:11212,/var/run/memcached.sock:" {
		t.Errorf("memcache servers %q", names)
	}

	if !socket.Listen.Unix || socket.Listen.Addr() != "/tmp/nutyml-test.sock" || socket.Listen.Perm != 0o600 ||
		socket.Listen.Network() != "unix" {
		t.Errorf("socket listen = %+v", socket.Listen)
	}
	// twemproxy's defaults.
	if socket.Hash != "fnv1a_64" || socket.Distribution != sharding.Ketama || socket.TimeoutSet ||
		socket.Backlog != 512 || socket.ServerConnections != 1 || socket.ServerRetryTimeout != 30*time.Second ||
		socket.ServerFailureLimit != 2 || socket.AutoEjectHosts || socket.Preconnect || socket.Redis ||
		socket.RedisDB != 0 || socket.ReadPolicy != sharding.ReadPrimary || socket.HashTag != "" ||
		socket.ClientTimeout != 0 || socket.ClientWriteTimeout != DefaultClientWriteTimeout {
		t.Errorf("defaults = %+v", socket)
	}
}

func TestLoadKvproxyFile(t *testing.T) {
	cfg, err := Load("testdata/kvproxy.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsListen != "127.0.0.1:9121" || cfg.MetricsListenLine != 2 {
		t.Errorf("metrics_listen %q on line %d", cfg.MetricsListen, cfg.MetricsListenLine)
	}
	p := cfg.Pools[0]
	if p.ServerPassword != "server-secret" || p.ServerAuth() != "server-secret" || p.RedisAuth != "client-secret" ||
		p.ReadPolicy != sharding.ReadPreferReplica || p.Hash != "xxhash" ||
		p.ClientTimeout != 300*time.Second || p.ClientWriteTimeout != 5*time.Second {
		t.Errorf("pool = %+v", p)
	}
	byName := map[string]Server{}
	for _, s := range p.Servers {
		byName[s.Name] = s
	}
	if r := byName["shard1"].Replicas; len(r) != 1 || r[0].Addr != "10.0.1.1:6379" || r[0].Line != 19 {
		t.Errorf("shard1 replicas %+v", r)
	}
	if r := byName["shard2"].Replicas; len(r) != 2 || !r[1].Unix || r[1].Addr != "/run/redis/replica.sock" || r[1].Network() != "unix" {
		t.Errorf("shard2 replicas %+v", r)
	}
	s3 := byName["10.0.0.3:6379"]
	if r := s3.Replicas; len(r) != 1 || r[0].Addr != "[::1]:6380" {
		t.Errorf("10.0.0.3 replicas %+v", r)
	}
	s2 := byName["shard2"]
	if p.PasswordFor(&s2) != "other-secret" || p.PasswordFor(&s3) != "server-secret" {
		t.Error("per-server passwords")
	}
	shards := p.Shards()
	if len(shards) != 3 || shards[1].Name != "shard2" || shards[1].Replicas != 2 {
		t.Errorf("shards %+v", shards)
	}
	sc, err := p.ShardingConfig()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sharding.NewPool(sc, shards)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Pick([]byte("k")) < 0 {
		t.Error("no server picked")
	}
}

// goodFiles are small files Parse accepts, all of which nutcracker accepts too.
var goodFiles = []struct {
	name  string
	data  string
	check func(*Config) bool
}{
	{"quoted values", "a:\n  listen: \"127.0.0.1:22121\"\n  timeout: \"100\"\n  redis: 'true'\n  servers:\n    - \"127.0.0.1:6379:1\"\n",
		func(c *Config) bool { return c.Pools[0].Timeout == 100*time.Millisecond && c.Pools[0].Redis }},
	{"null-looking password is a string", "a:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_auth: ~\n  servers:\n    - 127.0.0.1:6379:1\n",
		func(c *Config) bool { return c.Pools[0].RedisAuth == "~" }},
	{"comments and blank lines", "# c\n\na: # pool\n  listen: 127.0.0.1:1 # here\n\n  servers:\n    - h:1:1 # one\n",
		func(c *Config) bool { return c.Pools[0].Servers[0].Name == "h:1" }},
	{"ipv6", "a:\n  listen: ::1:22121\n  servers:\n    - ::1:6379:1\n",
		func(c *Config) bool {
			return c.Pools[0].Listen.Addr() == "[::1]:22121" && c.Pools[0].Servers[0].Name == "::1:6379"
		}},
	{"permissions ignore trailing text like strtol", "a:\n  listen: /tmp/s 0660x\n  servers:\n    - h:1:1\n",
		func(c *Config) bool { return c.Pools[0].Listen.Perm == 0o660 }},
	{"permissions stop at the first non-octal digit", "a:\n  listen: /tmp/s 0999\n  servers:\n    - h:1:1\n",
		func(c *Config) bool { return c.Pools[0].Listen.Perm == 0 }},
	{"pool named metrics_listen", "metrics_listen:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n",
		func(c *Config) bool { return c.Pools[0].Name == "metrics_listen" && c.MetricsListen == "" }},
	{"same address, different names", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n    - h:1:1 y\n",
		func(c *Config) bool { return len(c.Pools[0].Servers) == 2 }},
}

func TestGoodFiles(t *testing.T) {
	for _, tt := range goodFiles {
		t.Run(tt.name, func(t *testing.T) {
			if cfg := mustParse(t, tt.data); !tt.check(cfg) {
				t.Errorf("unexpected result %+v", cfg.Pools[0])
			}
		})
	}
}

// badFiles are files Parse must reject; ext marks problems only with kvproxy's own keys,
// which nutcracker knows nothing of (it rejects those files for unknown keys).
var badFiles = []struct {
	name string
	data string
	line int
	pool string
	key  string
	err  error
	ext  bool
}{
	{"empty", "", 0, "", "", ErrMissing, false},
	{"comment only", "# nothing\n", 0, "", "", ErrMissing, false},
	{"not yaml", "a:\n  listen: [\n", 2, "", "", ErrSyntax, false},
	{"scalar top level", "hello\n", 1, "", "", ErrStructure, false},
	{"two documents", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n---\nb:\n  listen: 127.0.0.1:2\n  servers:\n    - h:1:1\n", 5, "", "", ErrSyntax, false},
	{"pool is a scalar", "a: 1\n", 1, "a", "", ErrStructure, false},
	{"pool is a list", "a:\n  - x\n", 1, "a", "", ErrStructure, false},
	{"unknown key", "a:\n  listen: 127.0.0.1:1\n  hashes: md5\n  servers:\n    - h:1:1\n", 3, "a", "hashes", ErrUnknownKey, false},
	{"duplicate key", "a:\n  listen: 127.0.0.1:1\n  hash: md5\n  hash: md5\n  servers:\n    - h:1:1\n", 4, "a", "hash", ErrDuplicate, false},
	{"missing listen", "a:\n  servers:\n    - h:1:1\n", 1, "a", "listen", ErrMissing, false},
	{"missing servers", "a:\n  listen: 127.0.0.1:1\n", 1, "a", "servers", ErrMissing, false},
	{"servers not a list", "a:\n  listen: 127.0.0.1:1\n  servers: h:1:1\n", 3, "a", "servers", ErrStructure, false},
	{"empty value", "a:\n  listen: 127.0.0.1:1\n  hash:\n  servers:\n    - h:1:1\n", 3, "a", "hash", ErrMissing, false},
	{"empty quoted value", "a:\n  listen: 127.0.0.1:1\n  redis_auth: \"\"\n  redis: true\n  servers:\n    - h:1:1\n", 3, "a", "redis_auth", ErrMissing, false},
	{"bad hash", "a:\n  listen: 127.0.0.1:1\n  hash: FNV1A_64\n  servers:\n    - h:1:1\n", 3, "a", "hash", ErrInvalidValue, false},
	{"bad distribution", "a:\n  listen: 127.0.0.1:1\n  distribution: consistent\n  servers:\n    - h:1:1\n", 3, "a", "distribution", ErrInvalidValue, false},
	{"hash tag of one byte", "a:\n  listen: 127.0.0.1:1\n  hash_tag: \"{\"\n  servers:\n    - h:1:1\n", 3, "a", "hash_tag", ErrInvalidValue, false},
	{"hash tag of three bytes", "a:\n  listen: 127.0.0.1:1\n  hash_tag: \"{}}\"\n  servers:\n    - h:1:1\n", 3, "a", "hash_tag", ErrInvalidValue, false},
	{"yaml bool", "a:\n  listen: 127.0.0.1:1\n  redis: yes\n  servers:\n    - h:1:1\n", 3, "a", "redis", ErrInvalidValue, false},
	{"capital bool", "a:\n  listen: 127.0.0.1:1\n  preconnect: True\n  servers:\n    - h:1:1\n", 3, "a", "preconnect", ErrInvalidValue, false},
	{"negative number", "a:\n  listen: 127.0.0.1:1\n  timeout: -1\n  servers:\n    - h:1:1\n", 3, "a", "timeout", ErrInvalidValue, false},
	{"float", "a:\n  listen: 127.0.0.1:1\n  backlog: 1.5\n  servers:\n    - h:1:1\n", 3, "a", "backlog", ErrInvalidValue, false},
	{"hex", "a:\n  listen: 127.0.0.1:1\n  redis_db: 0x1\n  servers:\n    - h:1:1\n", 3, "a", "redis_db", ErrInvalidValue, false},
	{"zero server connections", "a:\n  listen: 127.0.0.1:1\n  server_connections: 0\n  servers:\n    - h:1:1\n", 3, "a", "server_connections", ErrInvalidValue, false},
	{"redis_auth without redis", "a:\n  listen: 127.0.0.1:1\n  redis_auth: x\n  servers:\n    - h:1:1\n", 3, "a", "redis_auth", ErrInvalidValue, false},
	{"listen without port", "a:\n  listen: localhost\n  servers:\n    - h:1:1\n", 2, "a", "listen", ErrInvalidValue, false},
	{"listen without host", "a:\n  listen: :22121\n  servers:\n    - h:1:1\n", 2, "a", "listen", ErrInvalidValue, false},
	{"listen with brackets", "a:\n  listen: \"[::1]:22121\"\n  servers:\n    - h:1:1\n", 2, "a", "listen", ErrInvalidValue, false},
	{"document start", "---\na:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n", 1, "", "", ErrSyntax, false},
	{"document end", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n...\n", 5, "", "", ErrSyntax, false},
	{"directive", "%YAML 1.1\n---\na:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n", 1, "", "", ErrSyntax, false},
	{"listen port 0", "a:\n  listen: 127.0.0.1:0\n  servers:\n    - h:1:1\n", 2, "a", "listen", ErrInvalidValue, false},
	{"listen negative permissions", "a:\n  listen: /tmp/s -1\n  servers:\n    - h:1:1\n", 2, "a", "listen", ErrInvalidValue, false},
	{"listen permissions too big", "a:\n  listen: /tmp/s 1777\n  servers:\n    - h:1:1\n", 2, "a", "listen", ErrInvalidValue, false},
	{"server without weight", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1\n", 4, "a", "servers", ErrInvalidValue, false},
	{"server zero weight", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n    - h:2:0\n", 5, "a", "servers", ErrInvalidValue, false},
	{"server bad port", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:70000:1\n", 4, "a", "servers", ErrInvalidValue, false},
	{"server name with space", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 my server\n", 4, "a", "servers", ErrInvalidValue, false},
	{"duplicate server", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n    - h:1:2\n", 5, "a", "servers", ErrDuplicate, false},
	{"duplicate server name", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n    - g:2:1 x\n", 5, "a", "servers", ErrDuplicate, false},
	{"duplicate pool", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\na:\n  listen: 127.0.0.1:2\n  servers:\n    - h:1:1\n", 5, "a", "", ErrDuplicate, false},
	{"duplicate listen", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\nb:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n", 6, "b", "listen", ErrDuplicate, false},
	{"flow list", "a:\n  listen: 127.0.0.1:1\n  servers: [h:1:1]\n", 3, "", "", ErrSyntax, false},
	{"flow mapping", "a: {listen: 127.0.0.1:1}\n", 1, "", "", ErrSyntax, false},
	{"anchor", "a:\n  listen: &l 127.0.0.1:1\n  servers:\n    - h:1:1\n", 2, "", "", ErrSyntax, false},
	{"alias", "a:\n  listen: &l 127.0.0.1:1\n  servers:\n    - h:1:1\nb:\n  listen: *l\n  servers:\n    - h:1:1\n", 2, "", "", ErrSyntax, false},
	{"tag", "a:\n  listen: !!str 127.0.0.1:1\n  servers:\n    - h:1:1\n", 2, "", "", ErrSyntax, false},
	{"nested mapping", "a:\n  listen: 127.0.0.1:1\n  hash:\n    x: y\n  servers:\n    - h:1:1\n", 3, "a", "hash", ErrStructure, false},
	{"two lists", "a:\n  listen: 127.0.0.1:1\n  hash:\n    - md5\n  servers:\n    - h:1:1\n", 3, "a", "hash", ErrStructure, false},

	{"replicas of unknown server", "a:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n    - h:1:1 x\n  replicas:\n    y:\n      - h:2\n", 7, "a", "replicas", ErrInvalidValue, true},
	{"replica without port", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n  replicas:\n    x:\n      - h\n", 7, "a", "replicas", ErrInvalidValue, true},
	{"replicas not a list", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n  replicas:\n    x: h:2\n", 6, "a", "replicas", ErrStructure, true},
	{"replicas twice", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n  replicas:\n    x:\n      - h:2\n    h:1:\n      - h:3\n", 8, "a", "replicas", ErrDuplicate, true},
	{"ambiguous address", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n    - h:1:1 y\n  replicas:\n    h:1:\n      - h:3\n", 7, "a", "replicas", ErrInvalidValue, true},
	{"read_policy replica without replicas", "a:\n  listen: 127.0.0.1:1\n  read_policy: replica\n  servers:\n    - h:1:1\n", 3, "a", "read_policy", ErrInvalidValue, true},
	{"bad read_policy", "a:\n  listen: 127.0.0.1:1\n  read_policy: nearest\n  servers:\n    - h:1:1\n", 3, "a", "read_policy", ErrInvalidValue, true},
	{"server_password for memcached", "a:\n  listen: 127.0.0.1:1\n  server_password: x\n  servers:\n    - h:1:1\n", 3, "a", "server_password", ErrInvalidValue, true},
	{"server_passwords for memcached", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n  server_passwords:\n    h:1: pw\n", 5, "a", "server_passwords", ErrInvalidValue, true},
	{"replica without host", "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1 x\n  replicas:\n    x:\n      - :2\n", 7, "a", "replicas", ErrInvalidValue, true},
	{"bad metrics_listen", "metrics_listen: 9121\na:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n", 1, "", "metrics_listen", ErrInvalidValue, true},
	{"metrics_listen on a pool's address", "metrics_listen: 127.0.0.1:1\na:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n", 1, "", "metrics_listen", ErrDuplicate, true},
}

func TestBadFiles(t *testing.T) {
	for _, tt := range badFiles {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.data))
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if cfg != nil {
				t.Error("a Config returned with an error")
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not Errors", err)
			}
			first := list[0]
			if first.Line != tt.line || first.Pool != tt.pool || first.Key != tt.key || !errors.Is(first, tt.err) {
				t.Errorf("first problem %+v (%v), want line %d pool %q key %q %v\nall:\n%v",
					*first, first, tt.line, tt.pool, tt.key, tt.err, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("errors.Is(err, %v) is false", tt.err)
			}
			if tt.line > 0 && !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("message does not start with the line: %q", err)
			}
		})
	}
}

// Every problem is reported, not only the first, in line order.
func TestAllProblems(t *testing.T) {
	data := "a:\n  listen: 127.0.0.1:1\n  hash: nope\n  bogus: 1\n  servers:\n    - h:1\n    - h:2:1\nb:\n  servers:\n    - h:1:1\n"
	_, err := Parse([]byte(data))
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	var lines []int
	for _, e := range list {
		lines = append(lines, e.Line)
	}
	want := []int{3, 4, 6, 8}
	if len(lines) != len(want) {
		t.Fatalf("lines %v, want %v:\n%v", lines, want, err)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("lines %v, want %v:\n%v", lines, want, err)
		}
	}
}

func TestValidateBuiltConfig(t *testing.T) {
	cfg := mustParse(t, "a:\n  listen: 127.0.0.1:1\n  servers:\n    - h:1:1\n")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Pools[0].ServerConnections = 0
	cfg.Pools[0].Hash = "sha1"
	err := cfg.Validate()
	var list Errors
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("Validate = %v", err)
	}
	if err := (&Config{}).Validate(); !errors.Is(err, ErrMissing) {
		t.Errorf("empty config: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load = %v", err)
	}
}
