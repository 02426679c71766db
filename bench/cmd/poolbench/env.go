package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// target is one server or proxy a scenario runs against.
type target struct {
	name     string
	protocol string
	desc     string
	port     int    // on 127.0.0.1
	db       string // PostgreSQL database name to connect to
	pid      int    // the proxy's process, for CPU and RSS; 0 for direct
}

func (t *target) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.port)) }

// cleanups stops what a run started, last first. It is run by a deferred call, so an
// interrupted run stops everything too.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// bins are the programs a run uses, found or built at its start.
type bins struct {
	paths  map[string]string // program name -> path
	pgpool string
	kvpx   string
}

func (b *bins) path(name string) string { return b.paths[name] }

// pgTarget is one PostgreSQL target poolbench knows of: the server itself, a pooler
// it starts, or one it only detects on PATH.
type pgTarget struct {
	name  string // target name, and the program looked for on PATH
	title string // how progress lines name a pooler poolbench starts
	// desc describes the target in the report's table of targets.
	desc func(b *bins) string
	// start starts the pooler in front of e's PostgreSQL as s says, its files under
	// dir, and returns it as a target (nil: direct, or a pooler only detected).
	start func(e *pgEnv, cl *cleanups, dir string, b *bins, s poolerSetup) (*target, error)
	// onPath: started only when found on PATH; a run without it lists missing as
	// skipped, and one that does not start is skipped, not an error of the run.
	onPath  bool
	missing string
	// detected is the status of a pooler poolbench detects on PATH but does not run
	// ("": one it runs).
	detected string
}

// notConfigured is the status of pgcat and pgdog when found on PATH: neither is
// packaged in Debian, and both are Rust programs whose crates cannot be fetched here
// to build them and check a configuration of theirs.
const notConfigured = "detected but not run: poolbench has no configuration for it (not packaged in Debian, and its Rust crates cannot be fetched here to build and check one)"

// pgTargets are the PostgreSQL targets, in the order a run starts and measures them:
// direct first, then the poolers.
var pgTargets = []pgTarget{
	{name: DirectTarget,
		desc: func(b *bins) string { return toolVersion(b.path("postgres"), "--version") + ", no pooler" }},
	{name: "pgbouncer", title: "PgBouncer", start: (*pgEnv).startPgBouncer,
		desc: func(b *bins) string { return toolVersion(b.path("pgbouncer"), "--version") }},
	{name: "pgpool", title: "pgpool", start: (*pgEnv).startPgpool,
		desc: func(b *bins) string { return toolVersion(b.pgpool, "version") + ", built from this tree" }},
	{name: odysseyName, title: "odyssey", start: (*pgEnv).startOdyssey, onPath: true, missing: odysseyMissing,
		desc: func(b *bins) string {
			return fmt.Sprintf("%s, %d workers", toolVersion(b.path(odysseyName), "--version"), odysseyWorkers())
		}},
	{name: "pgcat", detected: notConfigured},
	{name: "pgdog", detected: notConfigured},
}

// pgPoolers returns the poolers of pgTargets a run with b starts: those found on
// PATH only when b has them.
func (b *bins) pgPoolers() []pgTarget {
	var ps []pgTarget
	for _, pt := range pgTargets {
		if pt.start != nil && (!pt.onPath || b.path(pt.name) != "") {
			ps = append(ps, pt)
		}
	}
	return ps
}

// pgTargetNames names the PostgreSQL targets of a run with b: direct, then its
// poolers.
func (b *bins) pgTargetNames() []string {
	names := []string{DirectTarget}
	for _, pt := range b.pgPoolers() {
		names = append(names, pt.name)
	}
	return names
}

// poolerNames names the PostgreSQL poolers a run starts, for its progress lines.
func (b *bins) poolerNames() string {
	var titles []string
	for _, pt := range b.pgPoolers() {
		titles = append(titles, pt.title)
	}
	if len(titles) < 2 {
		return strings.Join(titles, "")
	}
	return strings.Join(titles[:len(titles)-1], ", ") + " and " + titles[len(titles)-1]
}

// pgEnv is PostgreSQL with pgpool and PgBouncer in front of it.
type pgEnv struct {
	pg             *testenv.Postgres
	user, password string
	poolSize       int
	maxClients     int
	targets        []*target // direct, then the poolers with PgBouncer's default settings
	// loginPerClient is, per target name, the seconds per client pgbench's clients
	// last took to log in (from its initial connection time).
	loginPerClient map[string]float64
	// skip records a pooler that could not be started, and why (nil: ignored).
	skip func(why string)
}

// startPG starts PostgreSQL, fills pgbench's tables at scale, and starts PgBouncer and
// pgpool (and odyssey, if b has it) in transaction mode with a pool of poolSize, each
// accepting maxClients, with PgBouncer's defaults for every other setting. skip is
// told of an optional pooler that did not start.
func startPG(ctx context.Context, cl *cleanups, dir string, b *bins, scale, poolSize, maxClients int, skip func(string)) (*pgEnv, error) {
	pg, err := testenv.LaunchPostgres(testenv.PostgresOptions{MaxConnections: 250})
	if err != nil {
		return nil, err
	}
	cl.add(pg.Stop)
	e := &pgEnv{pg: pg, user: pg.SuperUser, password: pg.SuperPassword, poolSize: poolSize, maxClients: maxClients, skip: skip}
	init := exec.CommandContext(ctx, b.path("pgbench"), "-i", "-q", "-s", strconv.Itoa(scale),
		"-h", pg.Host, "-p", strconv.Itoa(pg.Port), "-U", pg.SuperUser, "postgres")
	init.Env = append(os.Environ(), "PGPASSWORD="+pg.SuperPassword, "PGSSLMODE=disable")
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	e.targets = append(e.targets, &target{name: DirectTarget, protocol: "pg", port: pg.Port, db: "postgres",
		desc: pgTargets[0].desc(b)})
	poolers, err := e.startPoolers(cl, dir, b, nil)
	if err != nil {
		return nil, err
	}
	e.targets = append(e.targets, poolers...)
	return e, nil
}

// poolerSettings returns the pgbouncer.ini [pgbouncer] settings of the poolers: the
// ones every scenario shares, then extra (a scenario's own, e.g. query_wait_timeout,
// or SCRAM logins: scramSettings) over them. Every setting not named keeps PgBouncer's
// default. Clients log in with trust (the user must still be in the auth_file): the
// sweeps measure the pooling, and the scenarios that measure logins set SCRAM.
func poolerSettings(poolSize, maxClients int, extra map[string]string) map[string]string {
	s := map[string]string{
		"pool_mode":         "transaction",
		"default_pool_size": strconv.Itoa(poolSize),
		"max_client_conn":   strconv.Itoa(maxClients + 100),
		"auth_type":         "trust",
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// settingsKey names a set of extra settings ("" for none), for file names and keys.
func settingsKey(extra map[string]string) string {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, extra[k])
	}
	return b.String()
}

// poolerDir is the directory, under dir, of the pooler name started with the
// settings key (settingsKey; "": the shared settings).
func poolerDir(dir, name, key string) string {
	d := filepath.Join(dir, name)
	if key != "" {
		d += "-" + strings.NewReplacer("=", "-", ",", "-").Replace(key)
	}
	return d
}

// poolerSetup is what the poolers of one start share: the pgbouncer.ini [pgbouncer]
// settings (poolerSettings), their key (settingsKey of the extra ones), the
// [databases] entries and the auth file.
type poolerSetup struct {
	settings  map[string]string
	key       string
	databases map[string]string // name -> connection string
	userlist  string
}

// startPoolers starts the poolers of b (pgPoolers: PgBouncer and pgpool, and odyssey
// if b has it) in front of e's PostgreSQL with the settings poolerSettings returns for
// extra, and returns them as targets. odyssey not starting leaves it out, told to
// e.skip.
func (e *pgEnv) startPoolers(cl *cleanups, dir string, b *bins, extra map[string]string) ([]*target, error) {
	pg := e.pg
	s := poolerSetup{
		settings: poolerSettings(e.poolSize, e.maxClients, extra),
		key:      settingsKey(extra),
		databases: map[string]string{"bench": pg.PgBouncerDB("postgres"),
			overloadDB: pg.PgBouncerDB("postgres", fmt.Sprintf("pool_size=%d", overloadPoolSize))},
		userlist: fmt.Sprintf("%q %q\n", pg.SuperUser, pg.SuperPassword),
	}
	var ts []*target
	for _, pt := range b.pgPoolers() {
		t, err := pt.start(e, cl, dir, b, s)
		if err != nil {
			if !pt.onPath {
				return nil, err
			}
			if e.skip != nil {
				with := "the shared settings"
				if s.key != "" {
					with = s.key
				}
				e.skip(fmt.Sprintf("%s with %s: it did not start: %v", pt.name, with, err))
			}
			continue
		}
		t.desc = pt.desc(b)
		ts = append(ts, t)
	}
	return ts, nil
}

// startPgBouncer starts PgBouncer as s says.
func (e *pgEnv) startPgBouncer(cl *cleanups, _ string, _ *bins, s poolerSetup) (*target, error) {
	bouncer, err := testenv.LaunchPgBouncer(testenv.PgBouncerOptions{
		Databases: s.databases,
		Settings:  s.settings,
		Userlist:  s.userlist,
	})
	if err != nil {
		return nil, err
	}
	cl.add(bouncer.Stop)
	return &target{name: "pgbouncer", protocol: "pg", port: bouncer.Port, db: "bench", pid: bouncer.PID()}, nil
}

// startPgpool starts pgpool (b.pgpool) as s says, its files in dir/pgpool[-key].
func (e *pgEnv) startPgpool(cl *cleanups, dir string, b *bins, s poolerSetup) (*target, error) {
	settings, databases := s.settings, s.databases
	pdir := poolerDir(dir, "pgpool", s.key)
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return nil, err
	}
	port, err := testenv.PickFreePort()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pdir, "userlist.txt"), []byte(s.userlist), 0o600); err != nil {
		return nil, err
	}
	var ini strings.Builder
	fmt.Fprintf(&ini, "[databases]\nbench = %s\n%s = %s\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n",
		databases["bench"], overloadDB, databases[overloadDB], port)
	fmt.Fprintf(&ini, "auth_file = %s\n", filepath.Join(pdir, "userlist.txt"))
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&ini, "%s = %s\n", k, settings[k])
	}
	iniPath := filepath.Join(pdir, "pgbouncer.ini")
	if err := os.WriteFile(iniPath, []byte(ini.String()), 0o600); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"-q", "--shutdown-timeout", "2s", iniPath}
	if os.Geteuid() == 0 {
		// pgpool, like PgBouncer, does not go on running as root: it gives root up for
		// the user PostgreSQL runs as, who must be able to read its files.
		if err := giveTo(pdir, "postgres"); err != nil {
			return nil, err
		}
		args = append([]string{"-u", "postgres"}, args...)
	}
	proc, err := testenv.LaunchProcess(testenv.ProcessSpec{
		Name: "pgpool", Path: b.pgpool, Args: args,
		Dir: pdir, LogFile: filepath.Join(pdir, "pgpool.log"), ReadyAddrs: []string{addr},
	})
	if err != nil {
		return nil, err
	}
	cl.add(proc.Terminate)
	return &target{name: "pgpool", protocol: "pg", port: port, db: "bench", pid: proc.PID()}, nil
}

// giveTo makes dir and the files in it owned by the user name.
func giveTo(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}

// poolYAML returns a nutcracker.yml with one pool named bench listening on
// 127.0.0.1:port over servers ("host:port"); redis false makes it a memcached pool.
func poolYAML(port int, servers []string, redis bool, timeoutMs int) string {
	var y strings.Builder
	fmt.Fprintf(&y, "bench:\n  listen: 127.0.0.1:%d\n", port)
	y.WriteString("  hash: fnv1a_64\n  hash_tag: \"{}\"\n  distribution: ketama\n")
	fmt.Fprintf(&y, "  timeout: %d\n  redis: %v\n  servers:\n", timeoutMs, redis)
	for _, s := range servers {
		fmt.Fprintf(&y, "   - %s:1\n", s)
	}
	return y.String()
}

// kvEnv is a set of Redis or memcached servers with nutcracker and kvproxy in front.
type kvEnv struct {
	shards  int
	targets []*target
	note    string // why kvproxy is missing, if it is
	redis   []*testenv.Redis
}

// startKV starts shards servers (Redis, or memcached when redis is false), nutcracker and
// kvproxy on the same pool definition; direct is the first server alone. For memcached,
// kvproxy runs only if `kvproxy -t` accepts a memcached pool.
func startKV(cl *cleanups, dir string, b *bins, shards int, redis bool, timeoutMs int) (*kvEnv, error) {
	proto, kind := "kv", "redis"
	if !redis {
		proto, kind = "memcache", "memcached"
	}
	e := &kvEnv{shards: shards}
	servers := make([]string, shards)
	// The servers stop together: each takes up to a second (redis-server at --hz 1
	// acts on SIGTERM at its next tick), hundreds of them one after another minutes.
	var stops []func()
	cl.add(func() { stopTogether(stops) })
	for i := range servers {
		if redis {
			r, err := testenv.LaunchRedis(testenv.RedisOptions{Args: smallRedis})
			if err != nil {
				return nil, err
			}
			stops = append(stops, r.Stop)
			servers[i] = r.Addr()
			e.redis = append(e.redis, r)
		} else {
			m, err := testenv.LaunchMemcached("-m", "64")
			if err != nil {
				return nil, err
			}
			stops = append(stops, m.Stop)
			servers[i] = m.Addr()
		}
	}
	port0, _ := strconv.Atoi(servers[0][strings.LastIndexByte(servers[0], ':')+1:])
	server := b.path("redis-server")
	if !redis {
		server = b.path("memcached")
	}
	e.targets = append(e.targets, &target{name: DirectTarget, protocol: proto, port: port0,
		desc: toolVersion(server, "--version") + ", one server, no proxy"})

	ncPort, err := testenv.PickFreePort()
	if err != nil {
		return nil, err
	}
	ncAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ncPort))
	nc, err := testenv.LaunchNutcracker(poolYAML(ncPort, servers, redis, timeoutMs), ncAddr)
	if err != nil {
		return nil, err
	}
	cl.add(nc.Stop)
	e.targets = append(e.targets, &target{name: "nutcracker", protocol: proto, port: ncPort, pid: nc.PID(),
		desc: toolVersion(b.path("nutcracker"), "--version") + fmt.Sprintf(", %d %s shards", shards, kind)})

	kdir := filepath.Join(dir, fmt.Sprintf("kvproxy-%s-%d-t%d", kind, shards, timeoutMs))
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return nil, err
	}
	kport, err := testenv.PickFreePort()
	if err != nil {
		return nil, err
	}
	sport, err := testenv.PickFreePort()
	if err != nil {
		return nil, err
	}
	yml := filepath.Join(kdir, "nutcracker.yml")
	if err := os.WriteFile(yml, []byte(poolYAML(kport, servers, redis, timeoutMs)), 0o644); err != nil {
		return nil, err
	}
	if !redis {
		if out, err := exec.Command(b.kvpx, "-t", "-c", yml).CombinedOutput(); err != nil {
			e.note = "kvproxy does not serve memcached pools yet (kvproxy -t refused the pool: " + refusal(out, yml) + ")"
			return e, nil
		}
	}
	kaddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kport))
	proc, err := testenv.LaunchProcess(testenv.ProcessSpec{
		Name: "kvproxy", Path: b.kvpx,
		Args: []string{"-c", yml, "-s", strconv.Itoa(sport), "-a", "127.0.0.1", "--log-level", "warn", "--shutdown-timeout", "2s"},
		Dir:  kdir, LogFile: filepath.Join(kdir, "kvproxy.log"),
		ReadyAddrs: []string{kaddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(sport))},
	})
	if err != nil {
		if !redis {
			e.note = fmt.Sprintf("kvproxy did not start on a memcached pool: %v", err)
			return e, nil
		}
		return nil, err
	}
	cl.add(proc.Terminate)
	e.targets = append(e.targets, &target{name: "kvproxy", protocol: proto, port: kport, pid: proc.PID(),
		desc: toolVersion(b.kvpx, "version") + fmt.Sprintf(", built from this tree, %d %s shards", shards, kind)})
	return e, nil
}

// stopTogether runs every stop at once and returns when all have returned.
func stopTogether(stops []func()) {
	var wg sync.WaitGroup
	for _, stop := range stops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop()
		}()
	}
	wg.Wait()
}

// smallRedis are the redis-servers' extra arguments: background tasks once a second
// instead of ten times, so that hundreds of idle shards leave the cores to the load.
var smallRedis = []string{"--hz", "1"}

// refusal condenses kvproxy -t's complaint about file to one line without the path.
func refusal(out []byte, file string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimPrefix(strings.TrimPrefix(line, file), ": ")
}
