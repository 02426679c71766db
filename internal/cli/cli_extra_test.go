package cli

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestVerbosity(t *testing.T) {
	v := NewVerbosity(DefaultVerbosity)
	if v.Leveler().Level() != slog.LevelInfo {
		t.Fatalf("default: %v", v.Leveler().Level())
	}
	if n := v.Up(); n != 6 || v.Leveler().Level() != slog.LevelInfo {
		t.Fatalf("up: %d %v", n, v.Leveler().Level())
	}
	if n := v.Up(); n != 7 || v.Leveler().Level() != slog.LevelDebug {
		t.Fatalf("up: %d %v", n, v.Leveler().Level())
	}
	v.Set(100)
	if v.Get() != MaxVerbosity || v.Up() != MaxVerbosity {
		t.Fatalf("clamp high: %d", v.Get())
	}
	v.Set(4)
	if v.Leveler().Level() != slog.LevelWarn {
		t.Fatalf("4: %v", v.Leveler().Level())
	}
	v.Set(-3)
	if v.Get() != 0 || v.Down() != 0 || v.Leveler().Level() != slog.LevelError {
		t.Fatalf("clamp low: %d %v", v.Get(), v.Leveler().Level())
	}
}

func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	l, err := OpenLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write([]byte("one\n"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("two\n")) // still the moved file, as with any open file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("three\n"))
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\ntwo\n" || string(cur) != "three\n" {
		t.Fatalf("rotated %q, current %q", old, cur)
	}
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	os.Remove(path)
	if os.Getuid() != 0 { // root may write anyway
		if err := l.Reopen(); err == nil {
			t.Fatal("reopen in a read-only directory succeeded")
		}
		l.Write([]byte("four\n")) // the file in use stays
	}
}

func TestPidfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := WritePidfile(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pidfile holds %q", b)
	}
	// A pidfile naming another live process (our parent) is refused.
	os.WriteFile(path, []byte(strconv.Itoa(os.Getppid())+"\n"), 0o644)
	if err := WritePidfile(path); !errors.Is(err, ErrPidfileInUse) {
		t.Fatalf("live pid: %v", err)
	}
	RemovePidfile(path) // not ours: kept
	if _, err := os.Stat(path); err != nil {
		t.Fatal("another process's pidfile was removed")
	}
	// A stale one is replaced, and removed at exit.
	os.WriteFile(path, []byte("999999999\n"), 0o644)
	if err := WritePidfile(path); err != nil {
		t.Fatal(err)
	}
	RemovePidfile(path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("own pidfile not removed")
	}
}
