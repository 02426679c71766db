// Package testenv starts real servers for tests: PostgreSQL 15, PgBouncer, Redis,
// memcached and nutcracker (twemproxy), all from Debian's packages, each on a free
// loopback port with its files in a fresh temporary directory.
//
// Every server started by a StartX function belongs to the test that started it and is
// stopped in that test's t.Cleanup (killed if it does not stop within a few seconds), and
// its directory is removed. Shared instances (SharedPostgres) live for the whole test
// binary and are stopped by Main, which a package's TestMain must call:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Servers are started with Pdeathsig set to SIGKILL, so they die with the test binary
// even when it is killed before its cleanups run.
//
// A missing server binary skips the test, or fails it when the environment variable
// CI is "true"; scripts/setup.sh installs every package the tests need.
//
// PostgreSQL and PgBouncer refuse to run as root: when the tests run as root, they are
// started as the unprivileged "postgres" user, and their directories are created under
// os.TempDir() (not t.TempDir(), whose parents that user cannot traverse) and owned by it.
//
// Readiness is never a sleep: each start polls a connect or a protocol ping with a short
// backoff under an overall deadline, and fails with the tail of the server's log if the
// server exits or does not come up in time.
//
// All helpers are safe for concurrent use by parallel tests. The handles they return
// (Postgres, Redis, ...) may be shared between goroutines; their fault-injection methods
// (Kill, Freeze, Thaw, Restart) are meant to be called from the test's own goroutine.
package testenv
