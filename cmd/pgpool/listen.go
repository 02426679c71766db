package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/poolsuite/poolsuite/internal/config/pgini"
)

// listenTargets lists the (network, address) pairs the configuration asks pgpool
// to listen on: each listen_addr entry on listen_port ("*" meaning 0.0.0.0 and
// ::), and the unix socket <unix_socket_dir>/.s.PGSQL.<listen_port>.
func listenTargets(c *pgini.Config) [][2]string {
	var out [][2]string
	port := strconv.Itoa(c.ListenPort)
	for _, a := range c.ListenAddr {
		switch a {
		case "*":
			out = append(out, [2]string{"tcp4", net.JoinHostPort("0.0.0.0", port)})
			out = append(out, [2]string{"tcp6", net.JoinHostPort("::", port)})
		default:
			out = append(out, [2]string{"tcp", net.JoinHostPort(a, port)})
		}
	}
	if c.UnixSocketDir != "" {
		out = append(out, [2]string{"unix", unixSocketPath(c.UnixSocketDir, c.ListenPort)})
	}
	return out
}

// unixSocketPath is where PostgreSQL clients look for a server's socket.
func unixSocketPath(dir string, port int) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
}

// listen opens every listener of the configuration. A "*" that cannot bind one
// of its two families (a host without IPv6) is logged and skipped; any other
// failure closes what was opened and is returned.
func listen(c *pgini.Config, warn func(msg string, args ...any)) ([]net.Listener, error) {
	lc := net.ListenConfig{}
	if c.SoReuseport {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			return errors.Join(err, serr)
		}
	}
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	star := false
	for _, a := range c.ListenAddr {
		star = star || a == "*"
	}
	for _, t := range listenTargets(c) {
		network, addr := t[0], t[1]
		if network == "unix" {
			ln, err := listenUnix(c, addr)
			if err != nil {
				return fail(err)
			}
			lns = append(lns, ln)
			continue
		}
		ln, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			if star && (network == "tcp6" || network == "tcp4") {
				warn("cannot listen", "network", network, "addr", addr, "err", err)
				continue
			}
			return fail(fmt.Errorf("%w on %s: %w", ErrListen, addr, err))
		}
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return nil, fmt.Errorf("%w: no listen_addr and no unix_socket_dir, or none could be opened", ErrListen)
	}
	return lns, nil
}

// listenUnix opens the unix socket at path, replacing a stale socket file left by
// a process that is gone, and applies unix_socket_mode and unix_socket_group.
func listenUnix(c *pgini.Config, path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if conn, err := net.Dial("unix", path); err == nil {
			conn.Close()
			return nil, fmt.Errorf("%w on %s: another server is listening there", ErrListen, path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrListen, path, err)
	}
	if err := os.Chmod(path, os.FileMode(c.UnixSocketMode)&os.ModePerm); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w on %s: unix_socket_mode: %w", ErrListen, path, err)
	}
	if c.UnixSocketGroup != "" {
		g, err := user.LookupGroup(c.UnixSocketGroup)
		if err == nil {
			var gid int
			gid, err = strconv.Atoi(g.Gid)
			if err == nil {
				err = os.Chown(path, -1, gid)
			}
		}
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("%w on %s: unix_socket_group: %w", ErrListen, path, err)
		}
	}
	return ln, nil
}
