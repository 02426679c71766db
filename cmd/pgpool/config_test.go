package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool"
)

// TestMapConfig checks the mapping from pgbouncer.ini to the pooler's Config.
func TestMapConfig(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "userlist.txt")
	os.WriteFile(users, []byte("\"alice\" \"secret\"\n\"bob\" \"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"), 0o600)
	ini := filepath.Join(dir, "pgbouncer.ini")
	os.WriteFile(ini, []byte(`[databases]
app = host=db.example port=5433 dbname=real user=alice pool_size=7 reserve_pool=2 pool_mode=session client_encoding=UTF8 timezone=UTC max_db_connections=9
local = dbname=x
* = host=127.0.0.1

[users]
bob = pool_mode=statement max_user_connections=3

[pgbouncer]
listen_addr = *
listen_port = 7432
unix_socket_dir = `+dir+`
auth_type = scram-sha-256
auth_file = `+users+`
admin_users = alice
pool_mode = transaction
default_pool_size = 11
max_client_conn = 999
query_wait_timeout = 7
server_idle_timeout = 0
server_check_query = <empty>
`), 0o644)
	rc, warnings, err := loadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	pc := rc.Pooler
	if pc.AuthType != "scram-sha-256" || pc.Userlist["alice"] != "secret" || !slices.Equal(pc.AdminUsers, []string{"alice"}) {
		t.Errorf("auth: %q %v %v", pc.AuthType, pc.Userlist, pc.AdminUsers)
	}
	if pc.PoolMode != pgpool.PoolTransaction || pc.DefaultPoolSize != 11 || pc.MaxClientConn != 999 ||
		pc.QueryWaitTimeout != 7*time.Second || pc.ServerIdleTimeout != 0 || pc.ServerCheckQuery != ";" {
		t.Errorf("globals: %+v", pc)
	}
	app := pc.Databases["app"]
	if app.Host != "db.example" || app.Port != 5433 || app.DBName != "real" || app.User != "alice" ||
		app.PoolSize != 7 || app.ReservePool != 2 || *app.PoolMode != pgpool.PoolSession ||
		app.MaxDBConnections != 9 || app.StartupParams["client_encoding"] != "UTF8" || app.StartupParams["timezone"] != "UTC" {
		t.Errorf("app: %+v", app)
	}
	if local := pc.Databases["local"]; local.Host != dir || local.ReservePool != -1 || local.PoolMode != nil {
		t.Errorf("local: %+v", local)
	}
	if pc.Databases["*"] == nil || pc.Databases["*"].Host != "127.0.0.1" {
		t.Errorf("fallback: %+v", pc.Databases["*"])
	}
	if bob := pc.Users["bob"]; bob == nil || *bob.PoolMode != pgpool.PoolStatement || bob.MaxUserConnections != 3 {
		t.Errorf("bob: %+v", pc.Users["bob"])
	}
	want := [][2]string{{"tcp4", "0.0.0.0:7432"}, {"tcp6", "[::]:7432"}, {"unix", filepath.Join(dir, ".s.PGSQL.7432")}}
	if got := listenTargets(rc.Ini); !slices.Equal(got, want) {
		t.Errorf("listen: %v, want %v", got, want)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
}

// TestMapConfigErrors checks that an unsupported auth type and TLS without files
// are errors with their class.
func TestMapConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		body string
		want error
	}{
		{"auth_type = any\n", ErrUnsupported},
		{"client_tls_sslmode = require\nclient_tls_key_file = /nonexistent.key\nclient_tls_cert_file = /nonexistent.crt\n", ErrTLS},
	} {
		ini := filepath.Join(dir, "p.ini")
		os.WriteFile(ini, []byte("[databases]\n* = host=127.0.0.1 user=u\n[pgbouncer]\n"+tc.body), 0o644)
		_, _, err := loadConfig(ini)
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.body, err, tc.want)
		}
	}
}

// TestDefaultsAgree checks that the pooler's Defaults are what an empty [pgbouncer]
// section gives, so a setting left out of pgbouncer.ini means the same in the pooler,
// in SHOW CONFIG and in PgBouncer.
func TestDefaultsAgree(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "userlist.txt")
	os.WriteFile(users, []byte("\"alice\" \"secret\"\n"), 0o600)
	ini := filepath.Join(dir, "pgbouncer.ini")
	os.WriteFile(ini, []byte("[databases]\napp = dbname=app\n\n[pgbouncer]\nauth_file = "+users+"\n"), 0o644)
	rc, _, err := loadConfig(ini)
	if err != nil {
		t.Fatal(err)
	}
	got, want := reflect.ValueOf(*rc.Pooler), reflect.ValueOf(*pgpool.Defaults())
	skip := map[string]bool{ // filled from the file or from the environment, not defaults
		"Userlist": true, "Databases": true, "Users": true, "ClientTLS": true, "ServerTLS": true,
		"FileSettings": true,
	}
	for i := 0; i < got.NumField(); i++ {
		name := got.Type().Field(i).Name
		if skip[name] || !got.Type().Field(i).IsExported() {
			continue
		}
		if !reflect.DeepEqual(got.Field(i).Interface(), want.Field(i).Interface()) {
			t.Errorf("%s: an empty pgbouncer.ini gives %v, pgpool.Defaults() %v", name, got.Field(i).Interface(), want.Field(i).Interface())
		}
	}
	if rc.Pooler.PoolMode != pgpool.PoolSession {
		t.Errorf("pool_mode default %v, PgBouncer's is session", rc.Pooler.PoolMode)
	}
}

// TestMapConfigMaxPacketSize: max_packet_size maps as set, and its default in
// pgbouncer.ini is the pooler's own default (PgBouncer's 2147483647).
func TestMapConfigMaxPacketSize(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		line string
		want int
	}{
		{"", pgpool.Defaults().MaxPacketSize},
		{"max_packet_size = 65536\n", 65536},
	} {
		ini := filepath.Join(dir, "p.ini")
		os.WriteFile(ini, []byte("[databases]\n* = host=127.0.0.1 user=u\n[pgbouncer]\nauth_type = trust\n"+tc.line), 0o644)
		rc, _, err := loadConfig(ini)
		if err != nil {
			t.Fatal(err)
		}
		if got := rc.Pooler.MaxPacketSize; got != tc.want || got == 0 {
			t.Errorf("%q: MaxPacketSize %d, want %d", tc.line, got, tc.want)
		}
	}
	if d := pgpool.Defaults().MaxPacketSize; d != 2147483647 {
		t.Errorf("default %d, want 2147483647", d)
	}
}
