package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Args are extra redis-server arguments, e.g. "--requirepass", "secret". They come
	// after the ones StartRedis passes, so they override them.
	Args []string
}

// Redis is a running redis-server listening on 127.0.0.1. Its fields must not be changed.
type Redis struct {
	Host string // "127.0.0.1"
	Port int
	Dir  string // working directory (--dir) and log

	// Process is the redis-server process: Kill, Freeze and Thaw inject faults.
	*Process

	stopOnce sync.Once
}

// StartRedis starts redis-server on a free port with persistence off
// (--save "" --appendonly no) and waits until it answers PING. It is stopped and its
// files removed in t.Cleanup. It skips (or fails under CI=true) if redis-server is not
// installed.
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	path := LookPath(t, "redis-server")
	r, err := startRedis(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func startRedis(path string, opts RedisOptions) (*Redis, error) {
	dir, err := serverDir("redis-test-", nil)
	if err != nil {
		return nil, err
	}
	r := &Redis{Host: "127.0.0.1", Dir: dir}
	r.Process = &Process{
		name:    "redis-server",
		path:    path,
		dir:     dir,
		logFile: filepath.Join(dir, "redis.log"),
	}
	err = startWithRetry(func() (bool, error) {
		port, err := freePort()
		if err != nil {
			return false, err
		}
		r.Port = port
		r.Process.args = append([]string{
			"--port", itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--daemonize", "no",
			"--logfile", "",
		}, opts.Args...)
		if err := r.Process.start(); err != nil {
			return false, err
		}
		if err := r.waitReady(); err != nil {
			retry := portInUse(r.Process, err)
			r.Process.Kill()
			return retry, startError(r.Process, err)
		}
		return false, nil
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// waitReady polls until the server answers PING (any reply but -LOADING counts, so a
// server with requirepass is ready when it answers -NOAUTH).
func (r *Redis) waitReady() error {
	return poll(StartTimeout, r.Process, func() error {
		line, err := roundTrip(r.Addr(), "*1\r\n$4\r\nPING\r\n")
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "-LOADING") {
			return fmt.Errorf("redis: %s", line)
		}
		return nil
	})
}

// roundTrip sends req on a new connection to addr and returns the first reply line
// without its line ending.
func roundTrip(addr, req string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// Addr returns "127.0.0.1:<port>".
func (r *Redis) Addr() string { return net.JoinHostPort(r.Host, itoa(r.Port)) }

// Restart starts redis-server again on the same port and waits until it answers PING.
// A running server is killed first. Its data is gone: persistence is off.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	if r.Running() {
		r.Kill()
	}
	if err := r.Process.start(); err != nil {
		t.Fatal(err)
	}
	if err := r.waitReady(); err != nil {
		t.Fatal(startError(r.Process, err))
	}
}

// Stop shuts the server down (SIGTERM), kills it if it has not exited within
// StopTimeout, and removes its files.
func (r *Redis) Stop() {
	r.stopOnce.Do(func() {
		r.Process.stop(syscall.SIGTERM)
		os.RemoveAll(r.Dir)
	})
}
