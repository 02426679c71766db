package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Memcached is a running memcached listening on 127.0.0.1 (TCP only). Its fields must not
// be changed.
type Memcached struct {
	Host string // "127.0.0.1"
	Port int
	Dir  string // holds the log

	// Process is the memcached process: Kill, Freeze and Thaw inject faults.
	*Process

	stopOnce sync.Once
}

// StartMemcached starts memcached on a free port with UDP off (-l 127.0.0.1 -p port -U 0)
// and waits until it answers "version". args are extra memcached arguments (e.g. "-m",
// "16", "-vv"). When running as root it adds "-u nobody" unless args have -u. It is
// stopped in t.Cleanup. It skips (or fails under CI=true) if memcached is not installed.
func StartMemcached(t testing.TB, args ...string) *Memcached {
	t.Helper()
	path := LookPath(t, "memcached")
	m, err := startMemcached(path, args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func startMemcached(path string, extra []string) (*Memcached, error) {
	dir, err := serverDir("memcached-test-", nil)
	if err != nil {
		return nil, err
	}
	m := &Memcached{Host: "127.0.0.1", Dir: dir}
	m.Process = &Process{
		name:    "memcached",
		path:    path,
		dir:     dir,
		logFile: filepath.Join(dir, "memcached.log"),
	}
	if os.Geteuid() == 0 && !slices.Contains(extra, "-u") && !hasPrefixArg(extra, "--user") {
		extra = append([]string{"-u", "nobody"}, extra...)
	}
	err = startWithRetry(func() (bool, error) {
		port, err := freePort()
		if err != nil {
			return false, err
		}
		m.Port = port
		m.Process.args = append([]string{"-l", "127.0.0.1", "-p", itoa(port), "-U", "0"}, extra...)
		if err := m.Process.start(); err != nil {
			return false, err
		}
		if err := m.waitReady(); err != nil {
			retry := portInUse(m.Process, err)
			m.Process.Kill()
			return retry, startError(m.Process, err)
		}
		return false, nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return m, nil
}

func hasPrefixArg(args []string, prefix string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, prefix) })
}

// waitReady polls until the server answers "version".
func (m *Memcached) waitReady() error {
	return poll(StartTimeout, m.Process, func() error {
		line, err := roundTrip(m.Addr(), "version\r\n")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "VERSION ") {
			return fmt.Errorf("memcached: version: %q", line)
		}
		return nil
	})
}

// Addr returns "127.0.0.1:<port>".
func (m *Memcached) Addr() string { return net.JoinHostPort(m.Host, itoa(m.Port)) }

// Restart starts memcached again on the same port and waits until it answers. A running
// server is killed first. Its data is gone.
func (m *Memcached) Restart(t testing.TB) {
	t.Helper()
	if m.Running() {
		m.Kill()
	}
	if err := m.Process.start(); err != nil {
		t.Fatal(err)
	}
	if err := m.waitReady(); err != nil {
		t.Fatal(startError(m.Process, err))
	}
}

// Stop shuts memcached down (SIGTERM), kills it if it has not exited within StopTimeout,
// and removes its files.
func (m *Memcached) Stop() {
	m.stopOnce.Do(func() {
		m.Process.stop(syscall.SIGTERM)
		os.RemoveAll(m.Dir)
	})
}
