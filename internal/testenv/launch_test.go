package testenv

import (
	"net"
	"path/filepath"
	"testing"
)

// TestLaunchProcessTerminate: LaunchProcess returns once the program accepts
// connections on its ReadyAddrs, and Terminate stops it.
func TestLaunchProcessTerminate(t *testing.T) {
	path := LookPath(t, "redis-server")
	port, err := PickFreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	dir := t.TempDir()
	p, err := LaunchProcess(ProcessSpec{Name: "redis-server", Path: path, Dir: dir, LogFile: filepath.Join(dir, "log"),
		Args: []string{"--port", itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, ReadyAddrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if line, err := roundTrip(addr, "*1\r\n$4\r\nPING\r\n"); err != nil || line != "+PONG" {
		t.Fatalf("PING after LaunchProcess: %q %v", line, err)
	}
	p.Terminate()
	if p.Running() {
		t.Fatal("running after Terminate")
	}
	if err := dialOnce(addr); err == nil {
		t.Fatal("still accepting connections after Terminate")
	}
}

// TestLaunchProcessNeverReady: a program that exits without listening is reported
// with its log, not waited for until the timeout.
func TestLaunchProcessNeverReady(t *testing.T) {
	path := LookPath(t, "redis-server")
	dir := t.TempDir()
	_, err := LaunchProcess(ProcessSpec{Name: "redis-server", Path: path, Dir: dir, LogFile: filepath.Join(dir, "log"),
		Args: []string{"--no-such-option"}, ReadyAddrs: []string{"127.0.0.1:1"}})
	if err == nil {
		t.Fatal("LaunchProcess of a program that exits succeeded")
	}
}

// TestFindProgram names the Debian package of a missing program.
func TestFindProgram(t *testing.T) {
	if _, err := FindProgram("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	if _, err := FindProgram("no-such-program-xyz"); err == nil {
		t.Fatal("found a program that does not exist")
	}
}
