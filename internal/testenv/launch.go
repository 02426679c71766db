package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
)

// This file holds variants of the StartX helpers for programs that are not tests (the
// benchmark harness): they return errors instead of failing a test, and the caller
// stops what they start (each handle's Stop, or Process.Terminate).

// FindProgram is LookPath for callers without a test: it returns the absolute path of
// the program name, or an error naming the Debian package that provides it.
func FindProgram(name string) (string, error) {
	p, err := findBinary(name)
	if err == nil {
		return p, nil
	}
	if pkg := debianPackage[name]; pkg != "" {
		return "", fmt.Errorf("%w (install Debian package %s; run scripts/setup.sh)", err, pkg)
	}
	return "", err
}

// Build is GoBuild for callers without a test: it builds the Go package pkg (an import
// path) into dir and returns the binary's path, named after the package's last element.
func Build(pkg, dir string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// PickFreePort is FreePort for callers without a test.
func PickFreePort() (int, error) { return freePort() }

// LaunchPostgres is StartPostgres for callers without a test; the caller must call Stop.
func LaunchPostgres(opts PostgresOptions) (*Postgres, error) { return startPostgres(opts) }

// LaunchPgBouncer is StartPgBouncer for callers without a test; the caller must call Stop.
func LaunchPgBouncer(opts PgBouncerOptions) (*PgBouncer, error) {
	path, err := FindProgram("pgbouncer")
	if err != nil {
		return nil, err
	}
	return startPgBouncer(path, opts)
}

// LaunchRedis is StartRedis for callers without a test; the caller must call Stop.
func LaunchRedis(opts RedisOptions) (*Redis, error) {
	path, err := FindProgram("redis-server")
	if err != nil {
		return nil, err
	}
	return startRedis(path, opts)
}

// LaunchMemcached is StartMemcached for callers without a test; the caller must call
// Stop.
func LaunchMemcached(args ...string) (*Memcached, error) {
	path, err := FindProgram("memcached")
	if err != nil {
		return nil, err
	}
	return startMemcached(path, args)
}

// LaunchNutcracker is StartNutcracker for callers without a test; the caller must call
// Stop.
func LaunchNutcracker(yml string, listenAddrs ...string) (*Nutcracker, error) {
	path, err := FindProgram("nutcracker")
	if err != nil {
		return nil, err
	}
	return startNutcracker(path, yml, listenAddrs)
}

// ProcessSpec describes a program for LaunchProcess.
type ProcessSpec struct {
	Name    string   // for messages, e.g. "pgpool"
	Path    string   // the executable
	Args    []string // its arguments
	Env     []string // appended to this process's environment
	Dir     string   // working directory
	LogFile string   // receives stdout and stderr

	// ReadyAddrs are TCP addresses ("127.0.0.1:port") the program listens on: it is
	// ready when all of them accept connections.
	ReadyAddrs []string
}

// LaunchProcess starts the program of spec as the current user, in a process group of
// its own and with Pdeathsig SIGKILL, and waits until every ReadyAddrs accepts TCP
// connections (at most StartTimeout). If it does not come up, it is killed and the
// error carries the tail of its log. The caller must call Terminate.
func LaunchProcess(spec ProcessSpec) (*Process, error) {
	p := &Process{name: spec.Name, path: spec.Path, args: spec.Args, env: spec.Env, dir: spec.Dir, logFile: spec.LogFile}
	if err := p.start(); err != nil {
		return nil, err
	}
	err := poll(StartTimeout, p, func() error {
		for _, a := range spec.ReadyAddrs {
			if err := dialOnce(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		p.Kill()
		return nil, startError(p, err)
	}
	return p, nil
}

// Terminate stops the process with SIGTERM, kills it (and its descendants) if it has
// not exited within StopTimeout, and returns once it has been waited for.
func (p *Process) Terminate() { p.stop(syscall.SIGTERM) }
