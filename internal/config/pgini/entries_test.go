package pgini

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestDatabases(t *testing.T) {
	tests := []struct {
		line string
		want Database // Pos is filled in by the test
	}{
		{"foodb =", Database{Name: "foodb", Port: 5432, DBName: "foodb"}},
		{"bardb = host=localhost dbname=bazdb", Database{Name: "bardb", Host: "localhost", Port: 5432, DBName: "bazdb"}},
		{"forcedb = host=localhost port=300 user=baz password=foo client_encoding=UNICODE datestyle=ISO connect_query='SELECT 1'",
			Database{Name: "forcedb", Host: "localhost", Port: 300, DBName: "forcedb", User: "baz", Password: "foo",
				ClientEncoding: "UNICODE", DateStyle: "ISO", ConnectQuery: "SELECT 1"}},
		{"nondefaultdb = pool_size=50 reserve_pool=10", Database{Name: "nondefaultdb", Port: 5432, DBName: "nondefaultdb",
			PoolSize: ptr(50), ReservePoolSize: ptr(10)}},
		{"d = reserve_pool_size=3 min_pool_size=2 max_db_connections=9 max_db_client_connections=8 pool_mode=transaction",
			Database{Name: "d", Port: 5432, DBName: "d", ReservePoolSize: ptr(3), MinPoolSize: ptr(2),
				MaxDBConnections: ptr(9), MaxDBClientConnections: ptr(8), PoolMode: PoolModeTransaction}},
		{"d = auth_user=bar auth_dbname=authdb auth_query='SELECT u, p FROM f($1)' timezone=UTC application_name=app",
			Database{Name: "d", Port: 5432, DBName: "d", AuthUser: "bar", AuthDBName: "authdb",
				AuthQuery: "SELECT u, p FROM f($1)", TimeZone: "UTC", ApplicationName: "app"}},
		{"d = server_lifetime=60 query_wait_timeout=0.5 load_balance_hosts=disable host=a,b",
			Database{Name: "d", Port: 5432, DBName: "d", ServerLifetime: ptr(time.Minute),
				QueryWaitTimeout: ptr(500 * time.Millisecond), LoadBalanceHosts: LoadBalanceDisable, Host: "a,b"}},
		{"d =   host = h   password='it''s  secret'  ", Database{Name: "d", Host: "h", Port: 5432, DBName: "d", Password: "it's  secret"}},
		{"d = Host=h PORT=1", Database{Name: "d", Host: "h", Port: 1, DBName: "d"}},
		{"Ab-c.d_1 = host=/var/run/postgresql", Database{Name: "Ab-c.d_1", Host: "/var/run/postgresql", Port: 5432, DBName: "Ab-c.d_1"}},
		{"'my db' = dbname='their db'", Database{Name: "my db", Port: 5432, DBName: "their db"}},
	}
	for _, tt := range tests {
		c, _ := load(t, "[pgbouncer]\n[databases]\n"+tt.line+"\n")
		got, ok := c.Databases[tt.want.Name]
		if !ok {
			t.Errorf("%q: no database %q in %v", tt.line, tt.want.Name, c.Databases)
			continue
		}
		want := tt.want
		want.Pos = Pos{"test.ini", 3}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.line, *got, want)
		}
	}
}

func TestBadDatabases(t *testing.T) {
	tests := []struct {
		line string
		key  string
		err  error
		msg  string
	}{
		{"a = Hots=x", "a", ErrInvalidValue, "Hots"},
		{"a = host=x pool_size=abc", "a", ErrInvalidValue, "pool_size"},
		{"a = pool_size=-1", "a", ErrInvalidValue, "pool_size"},
		{"a = port=abc", "a", ErrInvalidValue, "port"},
		{"a = port=0", "a", ErrInvalidValue, "port"},
		{"a = port=5432x", "a", ErrInvalidValue, "port"},
		{"a = port=65536", "a", ErrInvalidValue, "port"},
		{"a = pool_mode=foo", "a", ErrInvalidValue, "pool_mode"},
		{"a = load_balance_hosts=random", "a", ErrInvalidValue, "load_balance_hosts"},
		{"a = server_lifetime=1h", "a", ErrInvalidValue, "server_lifetime"},
		{"a = dbname=", "a", ErrSyntax, "empty value"},
		{"a = dbname=''", "a", ErrSyntax, "empty value"},
		{"a = host", "a", ErrSyntax, "key=value"},
		{"a = =x", "a", ErrSyntax, "key=value"},
		{"a = connect_query='SELECT 1", "a", ErrSyntax, "unterminated"},
		{"a = connect_query='SELECT 1'x", "a", ErrSyntax, "after the quoted value"},
		{"pgbouncer = host=x", "pgbouncer", ErrReservedName, "admin console"},
		{"* = host=x bogus=1", "*", ErrInvalidValue, "bogus"},
		{strings.Repeat("n", 64) + " = host=x", strings.Repeat("n", 64), ErrInvalidValue, "longer"},
	}
	for _, tt := range tests {
		ps := loadErr(t, "[pgbouncer]\n[databases]\n"+tt.line+"\n")
		if len(ps) != 1 {
			t.Errorf("%q: problems %v", tt.line, ps)
			continue
		}
		p := ps[0]
		if p.Line != 3 || p.Key != tt.key || !errors.Is(p, tt.err) || !strings.Contains(p.Msg, tt.msg) {
			t.Errorf("%q: got %v (line %d key %q err %v), want line 3 key %q err %v msg containing %q",
				tt.line, p, p.Line, p.Key, p.Err, tt.key, tt.err, tt.msg)
		}
	}
}

func TestUsers(t *testing.T) {
	src := "[pgbouncer]\n[users]\n" +
		"user1 = pool_mode=transaction max_user_connections=10\n" +
		"user2 = pool_size=3 reserve_pool_size=1 max_user_client_connections=5 query_timeout=2 idle_transaction_timeout=3 transaction_timeout=4 query_wait_timeout=0 client_idle_timeout=6\n" +
		"user3 =\n"
	c, _ := load(t, src)
	want := map[string]*User{
		"user1": {Name: "user1", Pos: Pos{"test.ini", 3}, PoolMode: PoolModeTransaction, MaxUserConnections: ptr(10)},
		"user2": {Name: "user2", Pos: Pos{"test.ini", 4}, PoolSize: ptr(3), ReservePoolSize: ptr(1), MaxUserClientConnections: ptr(5),
			QueryTimeout: ptr(2 * time.Second), IdleTransactionTimeout: ptr(3 * time.Second), TransactionTimeout: ptr(4 * time.Second),
			QueryWaitTimeout: ptr(time.Duration(0)), ClientIdleTimeout: ptr(6 * time.Second)},
		"user3": {Name: "user3", Pos: Pos{"test.ini", 5}},
	}
	if !reflect.DeepEqual(c.Users, want) {
		t.Errorf("users:\n got %+v\nwant %+v", c.Users, want)
	}
	for _, line := range []string{"u = pool_mode=none", "u = max_user_connections=x", "u = host=x", "u = pool_mode"} {
		ps := loadErr(t, "[pgbouncer]\n[users]\n"+line+"\n")
		if len(ps) != 1 || ps[0].Line != 3 || ps[0].Key != "u" {
			t.Errorf("%q: %v", line, ps)
		}
	}
}

func TestFallback(t *testing.T) {
	c, _ := load(t, "[pgbouncer]\n[databases]\nexact = host=e\n* = host=fb port=6000 pool_size=4\n")
	db, ok := c.Database("exact")
	if !ok || db.Host != "e" || db.Auto {
		t.Errorf("exact = %+v, %v", db, ok)
	}
	db, ok = c.Database("other")
	if !ok || db.Name != "other" || db.DBName != "other" || db.Host != "fb" || db.Port != 6000 || !db.Auto || *db.PoolSize != 4 {
		t.Errorf("fallback = %+v, %v", db, ok)
	}
	if c.Fallback.Name != "*" || c.Fallback.DBName != "" {
		t.Errorf("fallback entry modified: %+v", c.Fallback)
	}
	if _, ok := c.Database("pgbouncer"); ok {
		t.Errorf("admin console name resolved through the fallback")
	}
	c, _ = load(t, "[pgbouncer]\n[databases]\n* = dbname=shared\n")
	if db, _ := c.Database("x"); db.DBName != "shared" {
		t.Errorf("fallback dbname = %q", db.DBName)
	}
	c, _ = load(t, "[pgbouncer]\n[databases]\nonly = host=x\n")
	if _, ok := c.Database("other"); ok {
		t.Errorf("found a database without fallback")
	}
}

func TestEffective(t *testing.T) {
	src := `[pgbouncer]
pool_mode = statement
default_pool_size = 20
reserve_pool_size = 2
min_pool_size = 1
max_db_connections = 100
max_user_connections = 50
server_lifetime = 3600
query_wait_timeout = 120
query_timeout = 30
admin_users = root, admin
stats_users = stats
[databases]
plain =
tuned = pool_mode=transaction pool_size=10 reserve_pool=4 min_pool_size=3 max_db_connections=0 server_lifetime=60 query_wait_timeout=10
limited = max_db_connections=5
[users]
sess = pool_mode=session pool_size=2 query_wait_timeout=0 query_timeout=0
fast = query_timeout=5 max_user_connections=7 reserve_pool_size=0
`
	c, _ := load(t, src)
	plain, tuned, limited := c.Databases["plain"], c.Databases["tuned"], c.Databases["limited"]
	checks := []struct {
		name      string
		got, want any
	}{
		{"mode global", c.EffectivePoolMode(plain, "nobody"), PoolModeStatement},
		{"mode db", c.EffectivePoolMode(tuned, "nobody"), PoolModeTransaction},
		{"mode user over db", c.EffectivePoolMode(tuned, "sess"), PoolModeSession},
		{"mode nil db", c.EffectivePoolMode(nil, ""), PoolModeStatement},
		{"size global", c.EffectivePoolSize(plain, ""), 20},
		{"size db", c.EffectivePoolSize(tuned, "fast"), 10},
		{"size user", c.EffectivePoolSize(tuned, "sess"), 2},
		{"reserve global", c.EffectiveReservePoolSize(plain, ""), 2},
		{"reserve db", c.EffectiveReservePoolSize(tuned, ""), 4},
		{"reserve user 0", c.EffectiveReservePoolSize(tuned, "fast"), 0},
		{"min global", c.EffectiveMinPoolSize(plain), 1},
		{"min db", c.EffectiveMinPoolSize(tuned), 3},
		{"maxdb 0 inherits", c.EffectiveMaxDBConnections(tuned), 100},
		{"maxdb db", c.EffectiveMaxDBConnections(limited), 5},
		{"maxdb nil", c.EffectiveMaxDBConnections(nil), 100},
		{"maxdbclient", c.EffectiveMaxDBClientConnections(plain), 0},
		{"maxuser global", c.EffectiveMaxUserConnections("sess"), 50},
		{"maxuser user", c.EffectiveMaxUserConnections("fast"), 7},
		{"maxuserclient", c.EffectiveMaxUserClientConnections("x"), 0},
		{"lifetime global", c.EffectiveServerLifetime(plain), time.Hour},
		{"lifetime db", c.EffectiveServerLifetime(tuned), time.Minute},
		{"wait global", c.EffectiveQueryWaitTimeout(plain, ""), 120 * time.Second},
		{"wait db", c.EffectiveQueryWaitTimeout(tuned, "fast"), 10 * time.Second},
		{"wait user 0", c.EffectiveQueryWaitTimeout(tuned, "sess"), time.Duration(0)},
		{"query timeout user 0 inherits", c.EffectiveQueryTimeout("sess"), 30 * time.Second},
		{"query timeout user", c.EffectiveQueryTimeout("fast"), 5 * time.Second},
		{"idle tx", c.EffectiveIdleTransactionTimeout("fast"), time.Duration(0)},
		{"tx", c.EffectiveTransactionTimeout("fast"), time.Duration(0)},
		{"client idle", c.EffectiveClientIdleTimeout("fast"), time.Duration(0)},
		{"admin", c.IsAdmin("admin"), true},
		{"admin case-sensitive", c.IsAdmin("Admin"), false},
		{"not admin", c.IsAdmin("stats"), false},
		{"stats", c.IsStats("stats"), true},
		{"not stats", c.IsStats("root"), false},
		{"user lookup", c.User("fast") == c.Users["fast"], true},
		{"user absent", c.User("none") == nil, true},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestValidateCodeBuilt(t *testing.T) {
	c := Default()
	c.DefaultPoolSize = -1
	c.ListenPort = 70000
	c.PoolMode = PoolModeInherit
	c.ServerIdleTimeout = -time.Second
	c.Databases["x"] = &Database{Name: "y", Port: 0, PoolSize: ptr(-2)}
	c.Users["u"] = &User{Name: "u", QueryTimeout: ptr(-time.Second)}
	err := c.Validate()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate = %v", err)
	}
	keys := map[string]bool{}
	for _, p := range ps {
		keys[p.Key] = true
		if !errors.Is(p, ErrInvalidValue) {
			t.Errorf("%v: class %v", p, p.Err)
		}
	}
	for _, k := range []string{"default_pool_size", "listen_port", "pool_mode", "server_idle_timeout", "x", "u"} {
		if !keys[k] {
			t.Errorf("no problem for %s in %v", k, ps)
		}
	}
	// Validate never changes values.
	if c.DefaultPoolSize != -1 || c.ListenPort != 70000 {
		t.Errorf("Validate changed the config")
	}
	if (&Config{}).Validate() == nil {
		t.Errorf("zero Config validated")
	}
}

func TestEnums(t *testing.T) {
	for _, m := range []PoolMode{PoolModeSession, PoolModeTransaction, PoolModeStatement} {
		if got, err := ParsePoolMode(strings.ToUpper(m.String())); err != nil || got != m {
			t.Errorf("ParsePoolMode(%v) = %v, %v", m, got, err)
		}
	}
	for _, a := range []AuthType{AuthAny, AuthTrust, AuthPlain, AuthMD5, AuthCert, AuthHBA, AuthSCRAMSHA256, AuthPAM, AuthLDAP} {
		if got, err := ParseAuthType(a.String()); err != nil || got != a {
			t.Errorf("ParseAuthType(%v) = %v, %v", a, got, err)
		}
	}
	for _, m := range []SSLMode{SSLModeDisable, SSLModeAllow, SSLModePrefer, SSLModeRequire, SSLModeVerifyCA, SSLModeVerifyFull} {
		if got, err := ParseSSLMode(m.String()); err != nil || got != m {
			t.Errorf("ParseSSLMode(%v) = %v, %v", m, got, err)
		}
	}
	if PoolModeInherit.String() != "inherit" || PoolMode(42).String() != "pgini.PoolMode(42)" {
		t.Errorf("String of odd values: %v %v", PoolModeInherit, PoolMode(42))
	}
	if _, err := ParseLoadBalanceHosts("x"); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("ParseLoadBalanceHosts(x) = %v", err)
	}
}
