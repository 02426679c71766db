package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// StartTimeout bounds how long a StartX function waits for a server to become ready.
	StartTimeout = 30 * time.Second

	// StopTimeout bounds how long stopping a server waits before it kills the process.
	StopTimeout = 5 * time.Second

	// PostgresBinDir is where Debian's postgresql-15 package installs its programs.
	// LookPath searches it before PATH, so an unrelated "postgres" on PATH is not used.
	PostgresBinDir = "/usr/lib/postgresql/15/bin"
)

// searchDirs are searched by LookPath before PATH (first) and after it (the rest).
var (
	searchFirst = []string{PostgresBinDir}
	searchLast  = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}
)

// debianPackage names the package that provides a program, for error messages.
var debianPackage = map[string]string{
	"postgres":        "postgresql-15",
	"initdb":          "postgresql-15",
	"pg_ctl":          "postgresql-15",
	"psql":            "postgresql-client-15",
	"pgbench":         "postgresql-client-15",
	"pgbouncer":       "pgbouncer",
	"promtool":        "prometheus",
	"redis-server":    "redis-server",
	"redis-cli":       "redis-tools",
	"redis-benchmark": "redis-tools",
	"memcached":       "memcached",
	"memcstat":        "libmemcached-tools",
	"memcslap":        "libmemcached-tools",
	"memcp":           "libmemcached-tools",
	"memccat":         "libmemcached-tools",
	"nutcracker":      "nutcracker",
	"ruby":            "ruby",
}

// findBinary returns the absolute path of the program name, searching PostgresBinDir,
// then PATH, then the usual system directories.
func findBinary(name string) (string, error) {
	if filepath.IsAbs(name) {
		if isExecutable(name) {
			return name, nil
		}
		return "", fmt.Errorf("testenv: %s is not an executable file", name)
	}
	for _, dir := range searchFirst {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	for _, dir := range searchLast {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("testenv: program %q not found", name)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// InCI reports whether the environment variable CI is "true", in which case a missing
// server program fails the test instead of skipping it.
func InCI() bool { return os.Getenv("CI") == "true" }

// LookPath returns the absolute path of the program name (for example "postgres",
// "pgbouncer", "redis-cli"), searching PostgresBinDir first, then PATH, then /usr/sbin,
// /usr/bin and the other system directories. If the program is missing it fails the test
// when InCI is true and skips it otherwise, naming the Debian package to install.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := findBinary(name)
	if err == nil {
		return p
	}
	pkg := debianPackage[name]
	if pkg == "" {
		pkg = "the package providing it"
	} else {
		pkg = "Debian package " + pkg
	}
	msg := fmt.Sprintf("testenv: program %q not found (install %s; run scripts/setup.sh)", name, pkg)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a server
// the test starts. It comes from below the kernel's range of ephemeral ports (see
// freePort), so that no connection can take it before the server binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// WaitTCP waits until addr accepts a TCP connection, polling with a short backoff, and
// fails the test if it does not within timeout.
func WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	err := poll(timeout, nil, func() error { return dialOnce(addr) })
	if err != nil {
		t.Fatalf("testenv: %s does not accept connections: %v", addr, err)
	}
}

func dialOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// errExited is returned by poll when the watched process has exited.
var errExited = errors.New("testenv: server process exited")

// poll calls probe until it returns nil, backing off from 5 ms to 200 ms between calls.
// It gives up after timeout, or as soon as p (if not nil) has exited.
func poll(timeout time.Duration, p *Process, probe func() error) error {
	deadline := time.Now().Add(timeout)
	backoff := 5 * time.Millisecond
	var exited <-chan struct{}
	if p != nil {
		_, exited = p.current()
	}
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-exited:
			timer.Stop()
			return fmt.Errorf("%w (%v); last probe error: %v", errExited, p.exitErr(), err)
		case <-timer.C:
		}
		backoff = min(backoff*2, 200*time.Millisecond)
	}
}

// shared holds the stop functions of instances owned by Main.
var shared struct {
	mu    sync.Mutex
	main  bool
	stops []func()
}

// Main runs the tests of a package and then stops the shared servers started by them
// (SharedPostgres), and exits with the tests' status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	stops := shared.stops
	shared.stops = nil
	shared.mu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	os.Exit(code)
}

// registerShared records stop to be run by Main. It fails if Main is not in use, since
// nothing would then stop the shared instance and remove its files.
func registerShared(stop func()) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		return errors.New("testenv: shared servers need TestMain to call testenv.Main(m)")
	}
	shared.stops = append(shared.stops, stop)
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

var uniqueCounter atomic.Uint64

// UniqueName returns prefix followed by "_" and a suffix unique within the test binary
// (lower case letters, digits and underscores), for roles, databases and keys created on
// shared servers, which outlive a single test (and repeat under -count).
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%s", prefix, uniqueCounter.Add(1), randomHex(3))
}
