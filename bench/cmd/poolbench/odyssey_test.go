package main

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/odyssey-*.conf from what render writes")

// odysseyFixture is odyssey's configuration in a run with a pool of 20 and 300
// clients at most, with the settings of one scenario over the shared ones.
func odysseyFixture(extra map[string]string) odysseyConfig {
	return odysseyConfig{
		port: 6543, dir: "/tmp/poolbench-1/odyssey", workers: 2,
		pgHost: "127.0.0.1", pgPort: 5432, pgDB: "postgres",
		user: "postgres", password: "s3cret",
		databases: []odysseyDB{{name: "bench"}, {name: overloadDB, poolSize: overloadPoolSize}},
		settings:  poolerSettings(20, 300, extra),
	}
}

// routeOf returns the lines of database db's route in conf.
func routeOf(t *testing.T, conf, db string) string {
	t.Helper()
	_, rest, ok := strings.Cut(conf, "database \""+db+"\" {\n")
	if !ok {
		t.Fatalf("no database %s in\n%s", db, conf)
	}
	route, _, _ := strings.Cut(rest, "\n}\n")
	return route
}

// TestOdysseyConfig checks odyssey.conf for the settings each kind of scenario gives
// the poolers: the sweeps (trust), the idle clients and login storm (SCRAM) and the
// overload (query_wait_timeout 2 s), against committed files and line by line.
func TestOdysseyConfig(t *testing.T) {
	cases := []struct {
		name  string
		extra map[string]string
		auth  string // the routes' authentication line
		pass  bool   // a password line for clients
		wait  string // pool_timeout line
	}{
		{"shared", nil, `authentication "none"`, false, "pool_timeout 120000"},
		{"scram", scramSettings, `authentication "scram-sha-256"`, true, "pool_timeout 120000"},
		{"overload", map[string]string{"query_wait_timeout": "2"}, `authentication "none"`, false, "pool_timeout 2000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, err := odysseyFixture(c.extra).render()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "odyssey-"+c.name+".conf")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if conf != string(want) {
				t.Errorf("odyssey.conf differs from %s (go test -run TestOdysseyConfig -update rewrites it):\n%s", golden, conf)
			}
			for _, line := range []string{
				"daemonize no", "workers 2", "client_max 400",
				`unix_socket_dir "/tmp/poolbench-1/odyssey"`, `locks_dir "/tmp/poolbench-1/odyssey/locks"`,
				"\thost \"127.0.0.1\"\n\tport 6543\n", "\thost \"127.0.0.1\"\n\tport 5432\n",
			} {
				if !strings.Contains(conf, line) {
					t.Errorf("no %q in\n%s", line, conf)
				}
			}
			for db, size := range map[string]string{"bench": "pool_size 20", overloadDB: "pool_size 10"} {
				route := routeOf(t, conf, db)
				for _, line := range []string{`user "postgres" {`, c.auth, size, c.wait, `pool "transaction"`,
					`storage_db "postgres"`, `storage_user "postgres"`, `storage_password "s3cret"`, "pool_discard no"} {
					if !strings.Contains(route, line) {
						t.Errorf("database %s: no %q in\n%s", db, line, route)
					}
				}
				if got := strings.Contains(route, "\t\tpassword \"s3cret\""); got != c.pass {
					t.Errorf("database %s: client password line %v, want %v:\n%s", db, got, c.pass, route)
				}
			}
		})
	}
}

// TestOdysseyConfigRefuses checks that a pgbouncer.ini setting odyssey has no
// equivalent for is an error, not a setting silently left out.
func TestOdysseyConfigRefuses(t *testing.T) {
	for _, extra := range []map[string]string{
		{"server_reset_query": "DISCARD ALL"},
		{"auth_type": "hba"},
		{"pool_mode": "bogus"},
		{"query_wait_timeout": "soon"},
		{"default_pool_size": "-1"},
	} {
		if _, err := odysseyFixture(extra).render(); !errors.Is(err, ErrOdysseySetting) {
			t.Errorf("%v: err %v, want ErrOdysseySetting", extra, err)
		}
	}
}

// TestOdysseyQuote checks that a double quote in a string does not end it.
func TestOdysseyQuote(t *testing.T) {
	if got, want := odysseyQuote(`a"b`), `"a\"b"`; got != want {
		t.Errorf("odysseyQuote: %s, want %s", got, want)
	}
}

// TestOdysseyAcceptsConfig runs `odyssey --test` on each scenario's odyssey.conf when
// odyssey is on PATH (it is not packaged in Debian: skipped without it).
func TestOdysseyAcceptsConfig(t *testing.T) {
	path, err := exec.LookPath(odysseyName)
	if err != nil {
		t.Skip("odyssey is not on PATH")
	}
	for _, extra := range []map[string]string{nil, scramSettings, {"query_wait_timeout": "2"}} {
		c := odysseyFixture(extra)
		c.dir = t.TempDir()
		conf, err := c.render()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(c.dir, "odyssey.conf")
		if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(path, f, "--test").CombinedOutput(); err != nil || !strings.Contains(string(out), "config is valid") {
			t.Errorf("%v: odyssey --test: %v\n%s", extra, err, out)
		}
	}
}
