package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// PgBouncerOptions configures StartPgBouncer.
type PgBouncerOptions struct {
	// Databases is the [databases] section: name -> connection string, for example
	// "host=127.0.0.1 port=5432 dbname=app" (see Postgres.PgBouncerDB).
	Databases map[string]string

	// Settings are [pgbouncer] settings (pool_mode, default_pool_size, auth_type,
	// admin_users, ...). They override the ones StartPgBouncer writes: listen_addr,
	// listen_port, unix_socket_dir (empty: no unix socket), auth_file and pidfile.
	// PgBouncer's own defaults apply to the rest; in 1.18 auth_type defaults to md5.
	Settings map[string]string

	// Userlist is the contents of the auth_file (userlist.txt), lines like
	// "user" "password-or-hash".
	Userlist string

	// TLS generates a self-signed certificate (PgBouncer.Cert), owned by the user PgBouncer
	// runs as, and sets client_tls_cert_file, client_tls_key_file and
	// client_tls_sslmode = allow (Settings may override them).
	TLS bool
}

// PgBouncer is a running PgBouncer listening on 127.0.0.1. Its fields must not be changed.
type PgBouncer struct {
	Host       string // "127.0.0.1"
	Port       int
	Dir        string // holds pgbouncer.ini, userlist.txt and the log
	ConfigFile string // Dir/pgbouncer.ini

	// Cert is the certificate for client connections when PgBouncerOptions.TLS is set.
	Cert *Cert

	// Process is the pgbouncer process.
	*Process

	stopOnce sync.Once
}

// StartPgBouncer writes a configuration into a temporary directory and starts PgBouncer
// on a free port; when running as root it runs as the user postgres. It is stopped and
// its files removed in t.Cleanup. It skips (or fails under CI=true) if pgbouncer is not
// installed.
func StartPgBouncer(t testing.TB, opts PgBouncerOptions) *PgBouncer {
	t.Helper()
	path := LookPath(t, "pgbouncer")
	b, err := startPgBouncer(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

func startPgBouncer(path string, opts PgBouncerOptions) (*PgBouncer, error) {
	o, err := unprivileged()
	if err != nil {
		return nil, err
	}
	dir, err := serverDir("pgbouncer-test-", o)
	if err != nil {
		return nil, err
	}
	b := &PgBouncer{Host: "127.0.0.1", Dir: dir, ConfigFile: filepath.Join(dir, "pgbouncer.ini")}
	b.Process = &Process{
		name:    "pgbouncer",
		path:    path,
		args:    []string{b.ConfigFile},
		dir:     dir,
		logFile: filepath.Join(dir, "pgbouncer.log"),
		owner:   o,
	}
	authFile := filepath.Join(dir, "userlist.txt")
	if err := writeFile(authFile, []byte(opts.Userlist), 0o600, o); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if opts.TLS {
		if b.Cert, err = newCert(dir, o); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	err = startWithRetry(func() (bool, error) {
		port, err := freePort()
		if err != nil {
			return false, err
		}
		b.Port = port
		settings := map[string]string{
			"listen_addr":     "127.0.0.1",
			"listen_port":     itoa(port),
			"unix_socket_dir": "",
			"auth_file":       authFile,
			"pidfile":         filepath.Join(dir, "pgbouncer.pid"),
		}
		if b.Cert != nil {
			settings["client_tls_cert_file"] = b.Cert.CertFile
			settings["client_tls_key_file"] = b.Cert.KeyFile
			settings["client_tls_sslmode"] = "allow"
		}
		for k, v := range opts.Settings {
			settings[k] = v
		}
		if err := writeFile(b.ConfigFile, pgbouncerINI(opts.Databases, settings), 0o600, o); err != nil {
			return false, err
		}
		if err := b.Process.start(); err != nil {
			return false, err
		}
		err = poll(StartTimeout, b.Process, func() error { return dialOnce(b.Addr()) })
		if err != nil {
			retry := portInUse(b.Process, err)
			b.Process.Kill()
			return retry, startError(b.Process, err)
		}
		return false, nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

func pgbouncerINI(databases, settings map[string]string) []byte {
	var s strings.Builder
	s.WriteString("; written by testenv\n[databases]\n")
	for _, k := range sortedKeys(databases) {
		fmt.Fprintf(&s, "%s = %s\n", k, databases[k])
	}
	s.WriteString("\n[pgbouncer]\n")
	for _, k := range sortedKeys(settings) {
		fmt.Fprintf(&s, "%s = %s\n", k, settings[k])
	}
	return []byte(s.String())
}

// PgBouncerDB returns a [databases] entry pointing at database db on this server over
// TCP, for PgBouncerOptions.Databases; extra is appended (e.g. "pool_size=5").
func (p *Postgres) PgBouncerDB(db string, extra ...string) string {
	s := fmt.Sprintf("host=%s port=%d dbname=%s", p.Host, p.Port, db)
	for _, e := range extra {
		s += " " + e
	}
	return s
}

// Addr returns "127.0.0.1:<port>".
func (b *PgBouncer) Addr() string { return net.JoinHostPort(b.Host, itoa(b.Port)) }

// ConnString returns a URL for connecting through PgBouncer without TLS:
// "postgres://user:password@127.0.0.1:port/db?sslmode=disable".
func (b *PgBouncer) ConnString(user, password, db string) string {
	u := url.URL{Scheme: "postgres", Host: b.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// Reload makes PgBouncer reread its configuration (SIGHUP).
func (b *PgBouncer) Reload() { b.Signal(syscall.SIGHUP) }

// Stop shuts PgBouncer down immediately (SIGTERM), kills it if it has not exited within
// StopTimeout, and removes its files.
func (b *PgBouncer) Stop() {
	b.stopOnce.Do(func() {
		b.Process.stop(syscall.SIGTERM)
		os.RemoveAll(b.Dir)
	})
}
