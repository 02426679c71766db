package cli

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"2000000", "", time.Second},
		{"2000000", "42", time.Second},
		{"2000000", "43", 0}, // meant for another process
		{"0", "", 0},
		{"x", "", 0},
		{"-5", "", 0},
	} {
		if got := watchdogInterval(tc.usec, tc.pid, 42); got != tc.want {
			t.Errorf("watchdogInterval(%q, %q) = %v, want %v", tc.usec, tc.pid, got, tc.want)
		}
	}
}

func TestNotifier(t *testing.T) {
	var nilN *Notifier // no NOTIFY_SOCKET: every call does nothing
	if nilN.Ready() != nil || nilN.Stopping() != nil || nilN.Close() != nil || nilN.WatchdogInterval() != 0 {
		t.Fatal("nil notifier")
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if n, err := NewNotifier(); n != nil || err != nil {
		t.Fatalf("unset: %v %v", n, err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := NewNotifier(); !errors.Is(err, ErrNotifySocket) {
		t.Fatalf("relative: %v", err)
	}
	dir, err := os.MkdirTemp("", "ntf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", "")
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if n.WatchdogInterval() != 20*time.Millisecond {
		t.Fatalf("interval %v", n.WatchdogInterval())
	}
	read := func() string {
		buf := make([]byte, 256)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:k])
	}
	n.Ready()
	if m := read(); m != "READY=1" {
		t.Fatalf("got %q", m)
	}
	n.StartWatchdog()
	if m := read(); m != "WATCHDOG=1" {
		t.Fatalf("got %q", m)
	}
	n.Close()
	if err := n.Stopping(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestCheckUser(t *testing.T) {
	if _, err := CheckUser("no-such-user-here", true); !errors.Is(err, ErrSwitchUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if os.Geteuid() == 0 {
		if _, err := CheckUser("", false); !errors.Is(err, ErrRunAsRoot) {
			t.Fatalf("root without a user: %v", err)
		}
		if _, err := CheckUser("root", false); !errors.Is(err, ErrRunAsRoot) {
			t.Fatalf("root as the user: %v", err)
		}
		if c, err := CheckUser("", true); c != nil || err != nil {
			t.Fatalf("root allowed: %v %v", c, err)
		}
		if c, err := CheckUser("nobody", false); err != nil || c.UID == 0 || c.Name != "nobody" {
			t.Fatalf("nobody: %+v %v", c, err)
		}
		return
	}
	if _, err := CheckUser("root", false); !errors.Is(err, ErrSwitchUser) {
		t.Fatalf("switch to root without being root: %v", err)
	}
	if c, err := CheckUser("", false); c != nil || err != nil {
		t.Fatalf("non-root without a user: %v %v", c, err)
	}
}
