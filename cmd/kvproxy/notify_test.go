package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/internal/version"
)

// TestSdNotify runs the kvproxy binary with NOTIFY_SOCKET pointing at a unixgram
// socket of the test's: READY=1 once it serves, RELOADING=1 then READY=1 around a
// SIGHUP reload, WATCHDOG=1 pings at half WATCHDOG_USEC, STOPPING=1 on SIGTERM, in
// that order; and kvproxy reports the suite's version.
func TestSdNotify(t *testing.T) {
	if Version != version.Version {
		t.Fatalf("kvproxy %s, suite %s", Version, version.Version)
	}
	bin := testenv.GoBuild(t, "github.com/poolsuite/poolsuite/cmd/kvproxy", t.TempDir())
	r := testenv.StartRedis(t, testenv.RedisOptions{})
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := filepath.Join(dir, "nutcracker.yml")
	os.WriteFile(conf, []byte("alpha:\n  listen: "+listen+"\n  redis: true\n  servers:\n    - "+r.Addr()+":1 one\n"), 0o644)

	sdir, err := os.MkdirTemp("", "ntf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sdir)
	sock := filepath.Join(sdir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	cmd := exec.Command(bin, "-c", conf, "-s", "0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=100000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	pings := 0
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		for {
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("reading the notify socket: %v", err)
			}
			if string(buf[:k]) != "WATCHDOG=1" {
				return string(buf[:k])
			}
			pings++
		}
	}
	if m := next(); m != "READY=1" || pings != 0 {
		t.Fatalf("first %q after %d pings, want READY=1", m, pings)
	}
	c, err := net.Dial("tcp", listen) // READY=1 means serving
	if err != nil {
		t.Fatalf("after READY=1: %v", err)
	}
	c.Close()
	cmd.Process.Signal(syscall.SIGHUP)
	if m := next(); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("on SIGHUP %q", m)
	}
	if m := next(); m != "READY=1" {
		t.Fatalf("after the reload %q", m)
	}
	buf := make([]byte, 64)
	for pings < 2 {
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := conn.Read(buf)
		if err != nil || string(buf[:k]) != "WATCHDOG=1" {
			t.Fatalf("waiting for watchdog pings: %q %v", buf[:k], err)
		}
		pings++
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if m := next(); m != "STOPPING=1" {
		t.Fatalf("at shutdown %q", m)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("exit: %v", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("kvproxy did not exit")
	}
}
