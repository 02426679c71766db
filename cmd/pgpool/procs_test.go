package main

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/cli"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// TestProcs runs the pgpool binary and reads the threads running Go code from its
// Prometheus metrics (go_sched_gomaxprocs_threads): --procs 3 gives 3; without it
// and without GOMAXPROCS in the environment, 1 on a machine of up to 2 CPUs and every
// CPU on a bigger one; GOMAXPROCS=3 in the environment gives 3; --procs -1 is refused.
func TestProcs(t *testing.T) {
	f := newFixture(t)
	env := append(testenv.EnvWithout("GOMAXPROCS"), AllowRootEnv+"=1")
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
		ini := f.writeConfig(t, "", "metrics_listen = "+metrics)
		penv := env
		if tc.env != "" {
			penv = append(append([]string(nil), env...), tc.env)
		}
		p := f.startPgpoolEnv(t, penv, append(append([]string(nil), tc.args...), ini)...)
		got := int(testenv.MetricValue(t, metrics, "go_sched_gomaxprocs_threads"))
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
