package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestProcs runs the pgpool binary and reads the threads running Go code from its
// Prometheus metrics (go_sched_gomaxprocs_threads): --procs 3 gives 3; without it
// and without GOMAXPROCS in the environment, 1 on a machine of up to 2 CPUs and every
// CPU on a bigger one; GOMAXPROCS=3 in the environment gives 3; --procs -1 is refused.
func TestProcs(t *testing.T) {
	f := newFixture(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	env = append(env, AllowRootEnv+"=1")
	want := runtime.NumCPU()
	if want <= 2 {
		want = 1
	}
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
		ini := f.writeConfig(t, "", "metrics_listen = "+metrics)
		penv := env
		if tc.env != "" {
			penv = append(append([]string(nil), env...), tc.env)
		}
		p := f.startPgpoolEnv(t, penv, append(append([]string(nil), tc.args...), ini)...)
		got := gomaxprocsOf(t, metrics)
		p.cmd.Process.Kill()
		<-p.done
		if got != tc.want {
			t.Errorf("pgpool %v %s: %d threads run Go code, want %d", tc.args, tc.env, got, tc.want)
		}
	}
	var out, errb strings.Builder
	if code := execute(t.Context(), []string{"--procs", "-1", "x.ini"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--procs") {
		t.Errorf("--procs -1: exit %d, %q; want 2 and a word about --procs", code, errb.String())
	}
}

// gomaxprocsOf reads go_sched_gomaxprocs_threads from the metrics at addr.
func gomaxprocsOf(t *testing.T, addr string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(line, "go_sched_gomaxprocs_threads "); ok {
					n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil {
						t.Fatalf("go_sched_gomaxprocs_threads %q: %v", v, err)
					}
					return int(n)
				}
			}
			t.Fatalf("no go_sched_gomaxprocs_threads in the metrics:\n%s", body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a listener that is starting
	}
}
