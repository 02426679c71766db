package sharding_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/config/nutyml"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/sharding"
)

// compatPool is one pool of the compatibility test: its pool keys and servers. Each
// server entry is written as "<redis address>:<weight>[ name]", so several entries (with
// different names) may share one redis-server; keys are checked per redis-server.
type compatPool struct {
	name    string
	keys    string   // extra pool keys, one per line
	servers []string // "%s" is replaced by the address of redis-server i (see entry)
	tagged  bool     // generate keys with hash tags
	// db0 keeps the pool in database 0: nutcracker 0.5 never sends SELECT to a server on
	// a unix socket (the connect completes at once and skips its post-connect step).
	db0 bool
}

// db returns the redis database the i-th pool uses.
func (p compatPool) db(i int) int {
	if p.db0 {
		return 0
	}
	return i + 1
}

// TestNutcrackerCompat writes keys through a real nutcracker for many pool
// configurations, then reads every redis-server directly and checks that each key is on
// the server that nutyml + sharding pick for it.
func TestNutcrackerCompat(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and nutcracker")
	}
	const nredis = 5
	sockDir := t.TempDir()
	redises := make([]*testenv.Redis, nredis)
	sockets := make([]string, nredis)
	for i := range redises {
		sockets[i] = filepath.Join(sockDir, fmt.Sprintf("r%d.sock", i))
		redises[i] = testenv.StartRedis(t, testenv.RedisOptions{Args: []string{
			"--databases", "128", "--unixsocket", sockets[i], "--unixsocketperm", "700",
		}})
	}

	pools := compatPools(nredis)
	var yml strings.Builder
	var listens []string
	for i, p := range pools {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
		listens = append(listens, addr)
		fmt.Fprintf(&yml, "%s:\n  listen: %s\n  redis: true\n", p.name, addr)
		if db := p.db(i); db != 0 {
			fmt.Fprintf(&yml, "  redis_db: %d\n", db)
		}
		for _, line := range strings.Split(strings.TrimSpace(p.keys), "\n") {
			if line != "" {
				fmt.Fprintf(&yml, "  %s\n", line)
			}
		}
		yml.WriteString("  servers:\n")
		for _, s := range p.servers {
			fmt.Fprintf(&yml, "    - %s\n", expandServer(s, redises, sockets))
		}
	}
	if len(pools) >= 128 {
		t.Fatal("more pools than redis databases")
	}

	// Our reading of the same file.
	cfg, err := nutyml.Parse([]byte(yml.String()))
	if err != nil {
		t.Fatalf("nutyml.Parse: %v\n%s", err, yml.String())
	}
	testenv.StartNutcracker(t, yml.String(), listens...)

	for i, p := range pools {
		t.Run(p.name, func(t *testing.T) {
			pc := cfg.Pools[i]
			if pc.Name != p.name {
				t.Fatalf("pool %d is %q", i, pc.Name)
			}
			sc, err := pc.ShardingConfig()
			if err != nil {
				t.Fatal(err)
			}
			pool, err := sharding.NewPool(sc, pc.Shards())
			if err != nil {
				t.Fatal(err)
			}
			// The redis-server behind each entry of pc.Servers.
			owner := make([]int, len(pc.Servers))
			for j, s := range pc.Servers {
				owner[j] = redisIndex(t, s.Addr(), redises, sockets)
			}

			if p.db0 { // shared by several pools
				for _, rd := range redises {
					flushDB0(t, rd.Addr())
				}
			}
			keys := compatKeys(uint64(i), 2000, p.tagged)
			setThrough(t, listens[i], keys)

			got := map[string]int{}
			for r, rd := range redises {
				for _, k := range keysOn(t, rd.Addr(), p.db(i)) {
					if prev, dup := got[k]; dup {
						t.Fatalf("key %q on redis %d and %d", k, prev, r)
					}
					got[k] = r
				}
			}
			if len(got) != len(keys) {
				t.Fatalf("%d keys written, %d found", len(keys), len(got))
			}
			perServer := make([]int, nredis)
			bad := 0
			for _, k := range keys {
				want := owner[pool.Pick(k)]
				perServer[got[string(k)]]++
				if got[string(k)] != want {
					if bad++; bad <= 5 {
						t.Errorf("key %q: nutcracker put it on redis %d, we pick redis %d", k, got[string(k)], want)
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d keys misplaced", bad, len(keys))
			}
			t.Logf("keys per redis-server: %v", perServer)
		})
	}
}

// compatPools returns the pools to check against nutcracker.
func compatPools(nredis int) []compatPool {
	all := make([]string, nredis) // each redis-server once, weight 1
	for i := range all {
		all[i] = fmt.Sprintf("%%%d:1", i)
	}
	var pools []compatPool
	for _, h := range sharding.HashNames() {
		if !sharding.IsTwemproxyHash(h) {
			continue
		}
		for _, d := range []string{"ketama", "modula"} {
			pools = append(pools, compatPool{name: h + "_" + d, keys: "hash: " + h + "\ndistribution: " + d, servers: all})
		}
	}
	weighted := []string{"%0:1", "%1:2", "%2:3", "%3:5", "%4:10"}
	named := []string{"%0:1 alpha", "%1:1 beta", "%2:1 gamma", "%3:1 delta", "%4:1 epsilon-server"}
	unix := []string{"@0:1", "@1:1", "@2:2", "@3:1", "@4:1"}
	// 25 and 50 entries: float32 gives each 156 ketama points, not 160. Entries share the
	// five redis-servers under different names.
	var many25, many50 []string
	for i := range 50 {
		e := fmt.Sprintf("%%%d:1 node-%02d", i%nredis, i)
		if i < 25 {
			many25 = append(many25, e)
		}
		many50 = append(many50, e)
	}
	var mixedWeights []string
	for i := range 12 {
		mixedWeights = append(mixedWeights, fmt.Sprintf("%%%d:%d s%d", i%nredis, 1+i*7%5, i))
	}
	pools = append(pools,
		compatPool{name: "default_hash_and_distribution", servers: all},
		compatPool{name: "ketama_weighted", servers: weighted},
		compatPool{name: "modula_weighted", keys: "distribution: modula", servers: weighted},
		compatPool{name: "ketama_named", servers: named},
		compatPool{name: "modula_named_murmur", keys: "hash: murmur\ndistribution: modula", servers: named},
		compatPool{name: "ketama_unix_sockets", servers: unix, db0: true},
		compatPool{name: "modula_unix_sockets", keys: "distribution: modula\nhash: crc32a", servers: unix, db0: true},
		compatPool{name: "ketama_hash_tag", keys: `hash_tag: "{}"`, servers: all, tagged: true},
		compatPool{name: "modula_hash_tag", keys: "hash_tag: \"{}\"\ndistribution: modula\nhash: fnv1_32", servers: all, tagged: true},
		compatPool{name: "ketama_25_servers", servers: many25},
		compatPool{name: "ketama_50_servers_md5", keys: "hash: md5", servers: many50},
		compatPool{name: "ketama_mixed_weights_hsieh", keys: "hash: hsieh", servers: mixedWeights},
		compatPool{name: "ketama_auto_eject", keys: "auto_eject_hosts: true\nserver_failure_limit: 3", servers: all},
	)
	return pools
}

// expandServer turns "%i" into redis-server i's host:port and "@i" into its socket path.
func expandServer(s string, redises []*testenv.Redis, sockets []string) string {
	if s[0] != '%' && s[0] != '@' {
		return s
	}
	end := 1
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	i, _ := strconv.Atoi(s[1:end])
	if s[0] == '@' {
		return sockets[i] + s[end:]
	}
	return redises[i].Addr() + s[end:]
}

func redisIndex(t *testing.T, addr string, redises []*testenv.Redis, sockets []string) int {
	t.Helper()
	for i, r := range redises {
		if r.Addr() == addr || sockets[i] == addr {
			return i
		}
	}
	t.Fatalf("no redis-server at %s", addr)
	return -1
}

// compatKeys returns n distinct keys of 1 to 48 random bytes (any byte value, so high
// bytes exercise the hashes' signed-char quirks), some with hash tags.
func compatKeys(seed uint64, n int, tagged bool) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	seen := map[string]bool{}
	var keys [][]byte
	for len(keys) < n {
		k := make([]byte, 1+rng.IntN(48))
		for i := range k {
			if rng.IntN(3) == 0 {
				k[i] = byte(rng.UintN(256))
			} else {
				k[i] = byte('a' + rng.IntN(26))
			}
		}
		if tagged {
			switch rng.IntN(4) {
			case 0:
				k = fmt.Appendf(nil, "user:{%d}:%s", rng.IntN(50), k)
			case 1:
				k = fmt.Appendf(nil, "{}%s{x}", k) // empty tag: whole key hashed
			case 2:
				k = fmt.Appendf(nil, "%s{open", k) // no closing brace
			}
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// setThrough SETs every key to "1" through nutcracker at addr, pipelined.
func setThrough(t *testing.T, addr string, keys [][]byte) {
	t.Helper()
	c := dialRESP(t, addr)
	defer c.Close()
	for _, k := range keys {
		c.send([]byte("SET"), k, []byte("1"))
	}
	c.flush(t)
	for _, k := range keys {
		if v, err := c.reply(); err != nil || v != "OK" {
			t.Fatalf("SET %q through nutcracker: %v %v", k, v, err)
		}
	}
}

// keysOn returns the keys in database db of the redis-server at addr.
func keysOn(t *testing.T, addr string, db int) []string {
	t.Helper()
	c := dialRESP(t, addr)
	defer c.Close()
	c.send([]byte("SELECT"), []byte(strconv.Itoa(db)))
	c.send([]byte("KEYS"), []byte("*"))
	c.flush(t)
	if v, err := c.reply(); err != nil || v != "OK" {
		t.Fatalf("SELECT %d: %v %v", db, v, err)
	}
	v, err := c.reply()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	keys, ok := v.([]any)
	if !ok {
		t.Fatalf("KEYS replied %v", v)
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.(string)
	}
	return out
}

// flushDB0 empties database 0 of the redis-server at addr.
func flushDB0(t *testing.T, addr string) {
	t.Helper()
	c := dialRESP(t, addr)
	defer c.Close()
	c.send([]byte("FLUSHDB"))
	c.flush(t)
	if v, err := c.reply(); err != nil || v != "OK" {
		t.Fatalf("FLUSHDB: %v %v", v, err)
	}
}

// respConn is a minimal RESP2 client for the test: enough for SET, SELECT and KEYS.
type respConn struct {
	net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialRESP(t *testing.T, addr string) *respConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return &respConn{Conn: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
}

func (c *respConn) send(args ...[]byte) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n", len(a))
		c.w.Write(a)
		c.w.WriteString("\r\n")
	}
}

func (c *respConn) flush(t *testing.T) {
	t.Helper()
	if err := c.w.Flush(); err != nil {
		t.Fatal(err)
	}
}

var errReply = errors.New("error reply")

// reply reads one reply: a string for simple and bulk strings, int64, []any, or an
// error wrapping errReply.
func (c *respConn) reply() (any, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := string(line[1 : len(line)-2])
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, fmt.Errorf("%w: %s", errReply, body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad bulk length %q", body)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad array length %q", body)
		}
		arr := make([]any, n)
		for i := range arr {
			if arr[i], err = c.reply(); err != nil {
				return nil, err
			}
		}
		return arr, nil
	}
	return nil, fmt.Errorf("bad reply type %q", line)
}
