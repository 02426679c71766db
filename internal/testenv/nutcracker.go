package testenv

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NutcrackerStatsInterval is the stats aggregation interval StartNutcracker passes with -i
// (nutcracker's default, 30 s, is too slow for tests that read stats).
const NutcrackerStatsInterval = time.Second

// Nutcracker is a running nutcracker (twemproxy). Its pools listen where the YAML given to
// StartNutcracker says; its stats server listens on 127.0.0.1:StatsPort. Its fields must
// not be changed.
type Nutcracker struct {
	StatsPort  int
	Dir        string // holds nutcracker.yml, the log and the pid file
	ConfigFile string // Dir/nutcracker.yml

	// Process is the nutcracker process.
	*Process

	listenAddrs []string
	stopOnce    sync.Once
}

// StartNutcracker writes yml to Dir/nutcracker.yml and runs
// "nutcracker -c file -s statsport -a 127.0.0.1 -i 1000 -o log -p pidfile". It is ready
// when the stats port and each of listenAddrs (the pools' listen addresses, which the
// caller put in yml, with ports from FreePort) accept TCP connections. It is stopped and
// its files removed in t.Cleanup. It skips (or fails under CI=true) if nutcracker is not
// installed.
func StartNutcracker(t testing.TB, yml string, listenAddrs ...string) *Nutcracker {
	t.Helper()
	path := LookPath(t, "nutcracker")
	n, err := startNutcracker(path, yml, listenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func startNutcracker(path, yml string, listenAddrs []string) (*Nutcracker, error) {
	dir, err := serverDir("nutcracker-test-", nil)
	if err != nil {
		return nil, err
	}
	n := &Nutcracker{Dir: dir, ConfigFile: filepath.Join(dir, "nutcracker.yml"), listenAddrs: listenAddrs}
	if err := writeFile(n.ConfigFile, []byte(yml), 0o644, nil); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logFile := filepath.Join(dir, "nutcracker.log")
	n.Process = &Process{name: "nutcracker", path: path, dir: dir, logFile: logFile}
	err = startWithRetry(func() (bool, error) {
		port, err := freePort()
		if err != nil {
			return false, err
		}
		n.StatsPort = port
		n.Process.args = []string{
			"-c", n.ConfigFile,
			"-s", itoa(port),
			"-a", "127.0.0.1",
			"-i", itoa(int(NutcrackerStatsInterval / time.Millisecond)),
			"-o", logFile,
			"-p", filepath.Join(dir, "nutcracker.pid"),
		}
		if err := n.Process.start(); err != nil {
			return false, err
		}
		if err := n.waitReady(); err != nil {
			retry := portInUse(n.Process, err)
			n.Process.Kill()
			return retry, startError(n.Process, err)
		}
		return false, nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

// waitReady polls until the stats port and every listen address accept connections.
func (n *Nutcracker) waitReady() error {
	addrs := append([]string{n.StatsAddr()}, n.listenAddrs...)
	return poll(StartTimeout, n.Process, func() error {
		for _, a := range addrs {
			if err := dialOnce(a); err != nil {
				return err
			}
		}
		return nil
	})
}

// StatsAddr returns "127.0.0.1:<StatsPort>".
func (n *Nutcracker) StatsAddr() string { return net.JoinHostPort("127.0.0.1", itoa(n.StatsPort)) }

// Stats reads and decodes the JSON document the stats port serves. Counters are
// aggregated every NutcrackerStatsInterval, so they lag behind.
func (n *Nutcracker) Stats(t testing.TB) map[string]any {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.StatsAddr(), time.Second)
	if err != nil {
		t.Fatalf("testenv: nutcracker stats: %v", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("testenv: nutcracker stats: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("testenv: nutcracker stats: %v", err)
	}
	var stats map[string]any
	if err := json.Unmarshal(b, &stats); err != nil {
		t.Fatalf("testenv: nutcracker stats: %v: %q", err, b)
	}
	return stats
}

// Restart starts nutcracker again with the same configuration and ports, and waits until
// it is ready. A running nutcracker is killed first.
func (n *Nutcracker) Restart(t testing.TB) {
	t.Helper()
	if n.Running() {
		n.Kill()
	}
	if err := n.Process.start(); err != nil {
		t.Fatal(err)
	}
	if err := n.waitReady(); err != nil {
		t.Fatal(startError(n.Process, err))
	}
}

// Stop shuts nutcracker down (SIGTERM), kills it if it has not exited within
// StopTimeout, and removes its files.
func (n *Nutcracker) Stop() {
	n.stopOnce.Do(func() {
		n.Process.stop(syscall.SIGTERM)
		os.RemoveAll(n.Dir)
	})
}
