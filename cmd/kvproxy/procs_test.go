package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestProcs runs the kvproxy binary and reads the threads running Go code from its
// Prometheus metrics (go_sched_gomaxprocs_threads): --procs 3 gives 3; without it
// and without GOMAXPROCS in the environment, 1 on a machine of up to 2 CPUs and every
// CPU on a bigger one; GOMAXPROCS=3 in the environment gives 3; --procs -1 is refused.
func TestProcs(t *testing.T) {
	bin := testenv.GoBuild(t, "github.com/poolsuite/poolsuite/cmd/kvproxy", t.TempDir())
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	os.WriteFile(conf, []byte("alpha:\n  listen: "+listen+"\n  redis: true\n  servers:\n    - 127.0.0.1:1:1 one\n"), 0o644)
	sdir, err := os.MkdirTemp("", "prc")
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
	env := testenv.EnvWithout("GOMAXPROCS")
	want := cli.Procs(0, false, runtime.NumCPU())
	for _, tc := range []struct {
		args []string
		env  string
		want int
	}{
		{[]string{"--procs", "3"}, "", 3},
		{nil, "", want},
		{nil, "GOMAXPROCS=3", 3},
	} {
		metrics := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cmd := exec.Command(bin, append([]string{"-c", conf, "-s", "0", "--metrics-addr", metrics}, tc.args...)...)
		cmd.Env = append(append([]string(nil), env...), "NOTIFY_SOCKET="+sock)
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		for string(buf[:len("READY=1")]) != "READY=1" {
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := conn.Read(buf); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("%v %s: waiting for READY=1: %v", tc.args, tc.env, err)
			}
		}
		got := int(testenv.MetricValue(t, metrics, "go_sched_gomaxprocs_threads"))
		cmd.Process.Kill()
		cmd.Wait()
		if got != tc.want {
			t.Errorf("%v %s: GOMAXPROCS %d, want %d", tc.args, tc.env, got, tc.want)
		}
	}
	out, err := exec.Command(bin, "-c", conf, "-s", "0", "--procs", "-1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "--procs") {
		t.Errorf("--procs -1: %v\n%s", err, out)
	}
}
