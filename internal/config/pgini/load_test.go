package pgini

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func noInclude(string) ([]byte, error) { return nil, fs.ErrNotExist }

// load parses src as test.ini with no includes and fails the test on error.
func load(t *testing.T, src string) (*Config, []Warning) {
	t.Helper()
	c, w, err := parse("test.ini", []byte(src), noInclude)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c, w
}

// loadErr parses src and returns its problems, failing if there are none.
func loadErr(t *testing.T, src string) Problems {
	t.Helper()
	c, _, err := parse("test.ini", []byte(src), noInclude)
	if err == nil {
		t.Fatalf("parse succeeded, want error; config %+v", c)
	}
	if c != nil {
		t.Errorf("config not nil on error")
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %T is not Problems: %v", err, err)
	}
	return ps
}

func TestDefaults(t *testing.T) {
	c, w := load(t, "[pgbouncer]\n")
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	tests := []struct {
		key  string
		got  any
		want any
	}{
		{"listen_addr", c.ListenAddr, []string(nil)},
		{"listen_port", c.ListenPort, 6432},
		{"listen_backlog", c.ListenBacklog, 128},
		{"unix_socket_dir", c.UnixSocketDir, "/tmp"},
		{"unix_socket_mode", c.UnixSocketMode, 0o777},
		{"unix_socket_group", c.UnixSocketGroup, ""},
		{"so_reuseport", c.SoReuseport, false},
		{"session_pinning", c.SessionPinning, true},
		{"syslog", c.Syslog, false},
		{"syslog_ident", c.SyslogIdent, "pgbouncer"},
		{"syslog_facility", c.SyslogFacility, "daemon"},
		{"log_format", c.LogFormat, "text"},
		{"metrics_listen", c.MetricsListen, ""},
		{"auth_type", c.AuthType, AuthMD5},
		{"auth_file", c.AuthFile, ""},
		{"auth_hba_file", c.AuthHBAFile, ""},
		{"auth_ident_file", c.AuthIdentFile, ""},
		{"auth_user", c.AuthUser, ""},
		{"auth_query", c.AuthQuery, "SELECT usename, passwd FROM pg_shadow WHERE usename=$1"},
		{"auth_dbname", c.AuthDBName, ""},
		{"admin_users", c.AdminUsers, []string(nil)},
		{"stats_users", c.StatsUsers, []string(nil)},
		{"pool_mode", c.PoolMode, PoolModeSession},
		{"max_client_conn", c.MaxClientConn, 100},
		{"default_pool_size", c.DefaultPoolSize, 20},
		{"min_pool_size", c.MinPoolSize, 0},
		{"reserve_pool_size", c.ReservePoolSize, 0},
		{"reserve_pool_timeout", c.ReservePoolTimeout, 5 * time.Second},
		{"max_db_connections", c.MaxDBConnections, 0},
		{"max_user_connections", c.MaxUserConnections, 0},
		{"max_db_client_connections", c.MaxDBClientConnections, 0},
		{"max_user_client_connections", c.MaxUserClientConnections, 0},
		{"server_round_robin", c.ServerRoundRobin, false},
		{"max_prepared_statements", c.MaxPreparedStatements, 200},
		{"server_reset_query", c.ServerResetQuery, "DISCARD ALL"},
		{"server_reset_query_always", c.ServerResetQueryAlways, false},
		{"server_check_query", c.ServerCheckQuery, "select 1"},
		{"server_check_delay", c.ServerCheckDelay, 30 * time.Second},
		{"server_fast_close", c.ServerFastClose, false},
		{"server_lifetime", c.ServerLifetime, time.Hour},
		{"server_idle_timeout", c.ServerIdleTimeout, 10 * time.Minute},
		{"server_connect_timeout", c.ServerConnectTimeout, 15 * time.Second},
		{"server_login_retry", c.ServerLoginRetry, 15 * time.Second},
		{"query_timeout", c.QueryTimeout, time.Duration(0)},
		{"query_wait_timeout", c.QueryWaitTimeout, 120 * time.Second},
		{"query_wait_notify", c.QueryWaitNotify, 5 * time.Second},
		{"cancel_wait_timeout", c.CancelWaitTimeout, 10 * time.Second},
		{"client_idle_timeout", c.ClientIdleTimeout, time.Duration(0)},
		{"client_login_timeout", c.ClientLoginTimeout, time.Minute},
		{"idle_transaction_timeout", c.IdleTransactionTimeout, time.Duration(0)},
		{"transaction_timeout", c.TransactionTimeout, time.Duration(0)},
		{"autodb_idle_timeout", c.AutodbIdleTimeout, time.Hour},
		{"suspend_timeout", c.SuspendTimeout, 10 * time.Second},
		{"ignore_startup_parameters", c.IgnoreStartupParameters, []string(nil)},
		{"track_extra_parameters", c.TrackExtraParameters, []string{"IntervalStyle"}},
		{"application_name_add_host", c.ApplicationNameAddHost, false},
		{"client_tls_sslmode", c.ClientTLS.SSLMode, SSLModeDisable},
		{"client_tls_key_file", c.ClientTLS.KeyFile, ""},
		{"client_tls_cert_file", c.ClientTLS.CertFile, ""},
		{"client_tls_ca_file", c.ClientTLS.CAFile, ""},
		{"client_tls_protocols", c.ClientTLS.Protocols, "secure"},
		{"client_tls_ciphers", c.ClientTLS.Ciphers, "fast"},
		{"client_tls13_ciphers", c.ClientTLS.TLS13Ciphers, ""},
		{"server_tls_sslmode", c.ServerTLS.SSLMode, SSLModePrefer},
		{"server_tls_key_file", c.ServerTLS.KeyFile, ""},
		{"server_tls_cert_file", c.ServerTLS.CertFile, ""},
		{"server_tls_ca_file", c.ServerTLS.CAFile, ""},
		{"server_tls_protocols", c.ServerTLS.Protocols, "secure"},
		{"server_tls_ciphers", c.ServerTLS.Ciphers, "fast"},
		{"server_tls13_ciphers", c.ServerTLS.TLS13Ciphers, ""},
		{"scram_iterations", c.ScramIterations, 4096},
		{"logfile", c.Logfile, ""},
		{"pidfile", c.Pidfile, ""},
		{"user", c.OSUser, ""},
		{"log_connections", c.LogConnections, true},
		{"log_disconnections", c.LogDisconnections, true},
		{"log_pooler_errors", c.LogPoolerErrors, true},
		{"log_stats", c.LogStats, true},
		{"stats_period", c.StatsPeriod, time.Minute},
		{"verbose", c.Verbose, 0},
		{"pkt_buf", c.PktBuf, 4096},
		{"max_packet_size", c.MaxPacketSize, int64(2147483647)},
		{"tcp_keepalive", c.TCPKeepalive, true},
		{"tcp_keepcnt", c.TCPKeepcnt, 0},
		{"tcp_keepidle", c.TCPKeepidle, time.Duration(0)},
		{"tcp_keepintvl", c.TCPKeepintvl, time.Duration(0)},
		{"tcp_user_timeout", c.TCPUserTimeout, time.Duration(0)},
		{"tcp_socket_buffer", c.TCPSocketBuffer, 0},
		{"dns_max_ttl", c.DNSMaxTTL, 15 * time.Second},
		{"dns_nxdomain_ttl", c.DNSNXDomainTTL, 15 * time.Second},
	}
	implemented := 0
	for _, s := range Settings() {
		if s.Implemented {
			implemented++
		}
	}
	if len(tests) != implemented {
		t.Errorf("%d defaults tested, %d settings implemented", len(tests), implemented)
	}
	for _, tt := range tests {
		if lookupSetting(tt.key) == nil {
			t.Errorf("%s: not a known setting", tt.key)
		}
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.key, tt.got, tt.want)
		}
	}
	if len(c.Databases) != 0 || len(c.Users) != 0 || c.Fallback != nil || c.Ignored != nil {
		t.Errorf("unexpected entries: %+v %+v %+v %+v", c.Databases, c.Users, c.Fallback, c.Ignored)
	}
	d := Default()
	d.File = c.File
	if !reflect.DeepEqual(c, d) {
		t.Errorf("empty file differs from Default()")
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestSettingValues(t *testing.T) {
	tests := []struct {
		line  string
		check func(c *Config) any
		want  any
	}{
		{"listen_addr = *", func(c *Config) any { return c.ListenAddr }, []string{"*"}},
		{"listen_addr = 127.0.0.1, ::1  10.1.1.1", func(c *Config) any { return c.ListenAddr }, []string{"127.0.0.1", "::1", "10.1.1.1"}},
		{"listen_addr =", func(c *Config) any { return c.ListenAddr }, []string(nil)},
		{"listen_port = 0", func(c *Config) any { return c.ListenPort }, 0},
		{"listen_port = 0x1920", func(c *Config) any { return c.ListenPort }, 6432},
		{"LISTEN_PORT = 7000", func(c *Config) any { return c.ListenPort }, 7000},
		{"unix_socket_mode = 0700", func(c *Config) any { return c.UnixSocketMode }, 0o700},
		{"unix_socket_dir =", func(c *Config) any { return c.UnixSocketDir }, ""},
		{"auth_type = SCRAM-SHA-256", func(c *Config) any { return c.AuthType }, AuthSCRAMSHA256},
		{"auth_type = trust", func(c *Config) any { return c.AuthType }, AuthTrust},
		{"auth_type = any", func(c *Config) any { return c.AuthType }, AuthAny},
		{"auth_type = plain", func(c *Config) any { return c.AuthType }, AuthPlain},
		{"auth_type = cert", func(c *Config) any { return c.AuthType }, AuthCert},
		{"pool_mode = Transaction", func(c *Config) any { return c.PoolMode }, PoolModeTransaction},
		{"pool_mode = statement", func(c *Config) any { return c.PoolMode }, PoolModeStatement},
		{"admin_users = a,b , c", func(c *Config) any { return c.AdminUsers }, []string{"a", "b", "c"}},
		{"query_timeout = 0.5", func(c *Config) any { return c.QueryTimeout }, 500 * time.Millisecond},
		{"metrics_listen = 127.0.0.1:9127", func(c *Config) any { return c.MetricsListen }, "127.0.0.1:9127"},
		{"metrics_listen = :9127", func(c *Config) any { return c.MetricsListen }, ":9127"},
		{"metrics_listen = [::1]:0", func(c *Config) any { return c.MetricsListen }, "[::1]:0"},
		{"metrics_listen =", func(c *Config) any { return c.MetricsListen }, ""},
		{"query_timeout = 1e1", func(c *Config) any { return c.QueryTimeout }, 10 * time.Second},
		{"query_timeout = .25", func(c *Config) any { return c.QueryTimeout }, 250 * time.Millisecond},
		{"server_lifetime = 0", func(c *Config) any { return c.ServerLifetime }, time.Duration(0)},
		{"tcp_user_timeout = 1500", func(c *Config) any { return c.TCPUserTimeout }, 1500 * time.Millisecond},
		{"tcp_keepidle = 30", func(c *Config) any { return c.TCPKeepidle }, 30 * time.Second},
		{"stats_period = 15", func(c *Config) any { return c.StatsPeriod }, 15 * time.Second},
		{"log_connections = 0", func(c *Config) any { return c.LogConnections }, false},
		{"server_round_robin = 2", func(c *Config) any { return c.ServerRoundRobin }, true},
		{"max_packet_size = 4294967295", func(c *Config) any { return c.MaxPacketSize }, int64(4294967295)},
		{"server_check_query =", func(c *Config) any { return c.ServerCheckQuery }, ""},
		{"server_check_query = <empty>", func(c *Config) any { return c.ServerCheckQuery }, EmptyQuery},
		{"auth_query = SELECT p FROM f($1) ; not a comment", func(c *Config) any { return c.AuthQuery }, "SELECT p FROM f($1) ; not a comment"},
		{"server_reset_query = 'DISCARD ALL'", func(c *Config) any { return c.ServerResetQuery }, "'DISCARD ALL'"},
		{"client_tls_sslmode = verify-full\nclient_tls_key_file = k\nclient_tls_cert_file = c", func(c *Config) any { return c.ClientTLS }, TLSConfig{SSLMode: SSLModeVerifyFull, KeyFile: "k", CertFile: "c", Protocols: "secure", Ciphers: "fast"}},
		{"track_extra_parameters = search_path,IntervalStyle", func(c *Config) any { return c.TrackExtraParameters }, []string{"search_path", "IntervalStyle"}},
		{"max_prepared_statements = 0", func(c *Config) any { return c.MaxPreparedStatements }, 0},
		{"verbose = 2", func(c *Config) any { return c.Verbose }, 2},
		{"\t default_pool_size\t=\t50 \r", func(c *Config) any { return c.DefaultPoolSize }, 50},
	}
	for _, tt := range tests {
		c, _ := load(t, "[pgbouncer]\n"+tt.line+"\n")
		if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %#v, want %#v", tt.line, got, tt.want)
		}
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		line string
		key  string
		err  error
	}{
		{"listen_port = abc", "listen_port", ErrInvalidValue},
		{"metrics_listen = 9127", "metrics_listen", ErrInvalidValue},
		{"metrics_listen = localhost:", "metrics_listen", ErrInvalidValue},
		{"listen_port = 70000", "listen_port", ErrInvalidValue},
		{"listen_port = 6432 ; comment", "listen_port", ErrInvalidValue},
		{"listen_port =", "listen_port", ErrInvalidValue},
		{"listen_backlog = 08", "listen_backlog", ErrInvalidValue},
		{"listen_backlog = 99999999999", "listen_backlog", ErrInvalidValue},
		{"default_pool_size = -1", "default_pool_size", ErrInvalidValue},
		{"default_pool_size = 1_000", "default_pool_size", ErrInvalidValue},
		{"max_client_conn = 10.5", "max_client_conn", ErrInvalidValue},
		{"max_packet_size = -1", "max_packet_size", ErrInvalidValue},
		{"pool_mode = sessions", "pool_mode", ErrInvalidValue},
		{"pool_mode = transaction ;x", "pool_mode", ErrInvalidValue},
		{"auth_type = password", "auth_type", ErrInvalidValue},
		{"client_tls_sslmode = on", "client_tls_sslmode", ErrInvalidValue},
		{"server_tls_sslmode = verify_full", "server_tls_sslmode", ErrInvalidValue},
		{"query_timeout = -1", "query_timeout", ErrInvalidValue},
		{"query_timeout = 5s", "query_timeout", ErrInvalidValue},
		{"query_timeout = inf", "query_timeout", ErrInvalidValue},
		{"query_timeout = nan", "query_timeout", ErrInvalidValue},
		{"query_timeout = 0x10", "query_timeout", ErrInvalidValue},
		{"query_timeout = 1e300", "query_timeout", ErrInvalidValue},
		{"server_lifetime = forever", "server_lifetime", ErrInvalidValue},
		{"log_connections = yes", "log_connections", ErrInvalidValue},
		{"tcp_keepidle = 1.5", "tcp_keepidle", ErrInvalidValue},
		{"stats_period = -5", "stats_period", ErrInvalidValue},
		{"unix_socket_mode = 0999", "unix_socket_mode", ErrInvalidValue},
		{"scram_iterations = 0", "scram_iterations", ErrInvalidValue},
		{"syslog = yes", "syslog", ErrInvalidValue},
		{"syslog_facility = kern", "syslog_facility", ErrInvalidValue},
		{"log_format = xml", "log_format", ErrInvalidValue},
		{"auth_type = pam", "auth_type", ErrUnsupported},
		{"auth_type = ldap", "auth_type", ErrUnsupported},
		{"auth_type = hba", "auth_type", ErrInconsistent},
		{"client_tls_sslmode = require", "client_tls_sslmode", ErrInconsistent},
		{"server_tls_key_file = /k", "server_tls_key_file", ErrInconsistent},
		{"server_tls_cert_file = /c", "server_tls_cert_file", ErrInconsistent},
	}
	for _, tt := range tests {
		ps := loadErr(t, "[pgbouncer]\n\n"+tt.line+"\n")
		if len(ps) != 1 {
			t.Errorf("%q: %d problems, want 1: %v", tt.line, len(ps), ps)
			continue
		}
		p := ps[0]
		if !errors.Is(p, tt.err) || !errors.Is(ps, tt.err) {
			t.Errorf("%q: error %v is not %v", tt.line, p.Err, tt.err)
		}
		if p.Key != tt.key || p.File != "test.ini" || p.Line != 3 {
			t.Errorf("%q: problem at %s:%d key %q, want test.ini:3 key %q (%v)", tt.line, p.File, p.Line, p.Key, tt.key, p)
		}
		if !strings.HasPrefix(p.Error(), "test.ini:3: "+tt.key) {
			t.Errorf("%q: message %q does not start with file:line: key", tt.line, p.Error())
		}
	}
}

func TestAllProblemsReported(t *testing.T) {
	src := `[pgbouncer]
listen_port = x
pool_mode = y
this is not a line
[databases]
a = host=h bogus=1
b = port=0
[nonsense]
ignored = here
`
	ps := loadErr(t, src)
	wantLines := []int{2, 3, 4, 6, 7, 8}
	if len(ps) != len(wantLines) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(wantLines), ps)
	}
	for i, p := range ps {
		if p.Line != wantLines[i] {
			t.Errorf("problem %d at line %d, want %d: %v", i, p.Line, wantLines[i], p)
		}
	}
	if !errors.Is(ps[2], ErrSyntax) || !errors.Is(ps[5], ErrUnknownSection) {
		t.Errorf("wrong classes: %v / %v", ps[2].Err, ps[5].Err)
	}
	if ps[3].Key != "a" || !strings.Contains(ps[3].Msg, "bogus") {
		t.Errorf("unknown db parameter problem = %v", ps[3])
	}
}

func TestSyntax(t *testing.T) {
	tests := []struct {
		name string
		src  string
		err  error // nil: parses
	}{
		{"comments", "; c\n# c\n   ; indented\n[pgbouncer]\n", nil},
		{"crlf", "[pgbouncer]\r\nlisten_port = 1\r\n", nil},
		{"no final newline", "[pgbouncer]\nlisten_port = 1", nil},
		{"section comment", "[pgbouncer] ; main\n", nil},
		{"section case", "[PgBouncer]\n[DATABASES]\n", nil},
		{"section spaces", "[ pgbouncer ]\n", nil},
		{"empty file", "", ErrMissingSection},
		{"no main section", "[databases]\n", ErrMissingSection},
		{"setting before section", "x = 1\n[pgbouncer]\n", ErrNoSection},
		{"unclosed section", "[pgbouncer\n", ErrSyntax},
		{"junk after section", "[pgbouncer] x\n", ErrSyntax},
		{"unknown section", "[pgbouncer]\n[pgbouncers]\n", ErrUnknownSection},
		{"no equals", "[pgbouncer]\nlisten_port 6432\n", ErrSyntax},
		{"bad key char", "[pgbouncer]\n$x = 1\n", ErrSyntax},
		{"empty quoted key", "[pgbouncer]\n'' = 1\n", ErrSyntax},
		{"unclosed quoted key", "[pgbouncer]\n'abc = 1\n", ErrSyntax},
		{"nul", "[pgbouncer]\nlisten_port = 1\x00\n", ErrSyntax},
		{"include without file", "[pgbouncer]\n%include \n", ErrSyntax},
		{"bare include", "[pgbouncer]\n%include\n", ErrSyntax},
		{"include missing", "[pgbouncer]\n%include nope.ini\n", ErrInclude},
	}
	for _, tt := range tests {
		_, _, err := parse("test.ini", []byte(tt.src), noInclude)
		switch {
		case tt.err == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
	// A missing include wraps the file system's error too.
	_, _, err := parse("test.ini", []byte("[pgbouncer]\n%include nope.ini\n"), noInclude)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing include: %v does not wrap fs.ErrNotExist", err)
	}
}

func TestWarnings(t *testing.T) {
	src := `[pgbouncer]
listen_port = 1
sbuf_loopcnt = 1
job_name = x
no_such_setting = 3
[peers]
1 = host=/tmp/a
[pgbouncer]
default_pool_size = 7
`
	c, w := load(t, src)
	want := []struct {
		line int
		key  string
		kind WarningKind
	}{
		{3, "sbuf_loopcnt", WarnUnsupported},
		{4, "job_name", WarnUnsupported},
		{5, "no_such_setting", WarnUnknownSetting},
		{6, "[peers]", WarnUnsupported},
		{8, "[pgbouncer]", WarnSectionReset},
	}
	if len(w) != len(want) {
		t.Fatalf("warnings = %v", w)
	}
	for i, ww := range want {
		if w[i].Line != ww.line || w[i].Key != ww.key || w[i].Kind != ww.kind || w[i].File != "test.ini" {
			t.Errorf("warning %d = %+v, want %+v", i, w[i], ww)
		}
	}
	if !strings.Contains(w[0].String(), "test.ini:3: sbuf_loopcnt: not supported by pgpool, ignored") {
		t.Errorf("warning text %q", w[0])
	}
	// The repeated [pgbouncer] header reset listen_port, as PgBouncer does.
	if c.ListenPort != 6432 || c.DefaultPoolSize != 7 {
		t.Errorf("after reset: listen_port %d default_pool_size %d", c.ListenPort, c.DefaultPoolSize)
	}
	if c.Ignored != nil {
		t.Errorf("ignored values survived the reset: %v", c.Ignored)
	}
	c, _ = load(t, "[pgbouncer]\njob_name = pg\n")
	if c.Ignored["job_name"] != "pg" {
		t.Errorf("Ignored = %v", c.Ignored)
	}
	if pos, ok := c.SettingPos("job_name"); ok {
		t.Errorf("SettingPos of an ignored setting = %v", pos)
	}
}

func TestSettingPos(t *testing.T) {
	c, _ := load(t, "[pgbouncer]\n\nListen_Port = 1\n")
	pos, ok := c.SettingPos("listen_port")
	if !ok || pos != (Pos{"test.ini", 3}) || pos.String() != "test.ini:3" {
		t.Errorf("SettingPos = %v, %v", pos, ok)
	}
	if _, ok := c.SettingPos("pool_mode"); ok {
		t.Errorf("pool_mode has a position")
	}
}

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("conf.d/dbs.ini", "[databases]\nfrom_include = host=h\n%include more.ini\n")
	write("conf.d/more.ini", "nested = host=n\n")
	write("conf.d/abs.ini", "[pgbouncer]\nmax_client_conn = 77\n")
	main := write("main.ini", "[pgbouncer]\nlisten_port = 1\n%include conf.d/dbs.ini\n"+
		"; the section from the include carries on:\nafter = host=a\n%include "+filepath.Join(dir, "conf.d/abs.ini")+"\n")
	c, w, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"from_include", "nested", "after"} {
		if _, ok := c.Databases[name]; !ok {
			t.Errorf("database %s missing", name)
		}
	}
	if got := c.Databases["nested"].Pos; got != (Pos{filepath.Join(dir, "conf.d/more.ini"), 1}) {
		t.Errorf("nested pos = %v", got)
	}
	if c.MaxClientConn != 77 || c.ListenPort != 6432 {
		t.Errorf("include's [pgbouncer] section did not reset and set: %d %d", c.MaxClientConn, c.ListenPort)
	}
	if len(w) != 1 || w[0].Kind != WarnSectionReset {
		t.Errorf("warnings = %v", w)
	}

	// Problems in included files name the included file.
	write("bad.ini", "listen_port = nope\n")
	badMain := write("badmain.ini", "[pgbouncer]\n%include bad.ini\n")
	_, _, err = Load(badMain)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || ps[0].File != filepath.Join(dir, "bad.ini") || ps[0].Line != 1 {
		t.Errorf("problem in include = %v", err)
	}

	// Self-inclusion stops at the depth limit with one problem.
	loop := write("loop.ini", "[pgbouncer]\n%include loop.ini\n")
	_, _, err = Load(loop)
	if !errors.Is(err, ErrInclude) {
		t.Errorf("include loop: %v", err)
	}
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Errorf("include loop problems: %v", err)
	}

	_, _, err = Load(filepath.Join(dir, "absent.ini"))
	if !errors.Is(err, ErrRead) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(absent) = %v", err)
	}
}

func TestFullFile(t *testing.T) {
	c, w, err := Load("testdata/pgbouncer.ini")
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if len(c.Databases) != 5 || c.Fallback == nil || len(c.Users) != 2 {
		t.Errorf("entries: %d dbs, fallback %v, %d users", len(c.Databases), c.Fallback, len(c.Users))
	}
	if got := c.Databases["analytics"].ConnectQuery; got != "SET search_path TO analytics, public; SELECT 'ready'" {
		t.Errorf("connect_query = %q", got)
	}
	if c.PoolMode != PoolModeTransaction || c.AuthType != AuthSCRAMSHA256 || c.ReservePoolTimeout != 2500*time.Millisecond {
		t.Errorf("settings: %v %v %v", c.PoolMode, c.AuthType, c.ReservePoolTimeout)
	}
	if !reflect.DeepEqual(c.ListenAddr, []string{"127.0.0.1", "::1"}) {
		t.Errorf("listen_addr = %q", c.ListenAddr)
	}
	if c.EffectivePoolMode(c.Databases["reports"], "web") != PoolModeTransaction ||
		c.EffectivePoolMode(c.Databases["reports"], "other") != PoolModeSession ||
		c.EffectivePoolMode(c.Databases["app"], "other") != PoolModeTransaction {
		t.Errorf("effective pool modes wrong")
	}
}

// TestDebianFile parses the pgbouncer.ini that Debian's package installs,
// when it is present.
func TestDebianFile(t *testing.T) {
	const path = "/etc/pgbouncer/pgbouncer.ini"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s: %v", path, err)
	}
	c, w, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if c.ListenPort != 6432 || c.AuthType != AuthMD5 {
		t.Errorf("listen_port %d auth_type %v", c.ListenPort, c.AuthType)
	}
}

func TestProblemsSorted(t *testing.T) {
	ps := loadErr(t, "[pgbouncer]\nclient_tls_sslmode = require\nlisten_port = x\n")
	if len(ps) != 2 || ps[0].Line != 2 || ps[1].Line != 3 {
		t.Errorf("problems out of order: %v", ps)
	}
}
