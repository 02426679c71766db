package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWritePidfileZombieIsGone: a pid file naming a killed instance that is not reaped
// yet (a zombie, as right after pkill -9 under an init that reaps late) does not stop a
// new instance, while one naming a live process does.
func TestWritePidfileZombieIsGone(t *testing.T) {
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	dead := exec.Command("true")
	if err := dead.Start(); err != nil {
		t.Fatal(err)
	}
	defer dead.Wait() // not before the check: until then it is a zombie
	stat := "/proc/" + strconv.Itoa(dead.Process.Pid) + "/stat"
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(stat)
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child did not become a zombie")
		}
		time.Sleep(10 * time.Millisecond)
	}
	path := filepath.Join(t.TempDir(), "kvproxy.pid")
	os.WriteFile(path, []byte(strconv.Itoa(live.Process.Pid)+"\n"), 0o644)
	if err := WritePidfile(path); !errors.Is(err, ErrPidfileInUse) {
		t.Fatalf("pid file of a live process: %v, want ErrPidfileInUse", err)
	}
	os.WriteFile(path, []byte(strconv.Itoa(dead.Process.Pid)+"\n"), 0o644)
	if err := WritePidfile(path); err != nil {
		t.Fatalf("pid file of a zombie: %v", err)
	}
	if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file holds %q, want %d", b, os.Getpid())
	}
}
