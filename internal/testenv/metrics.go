package testenv

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvWithout returns this process's environment without the variable name, for a
// child process that must not inherit it.
func EnvWithout(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// metricsClient bounds each scrape: a listener that accepts and never answers fails
// the test instead of hanging it.
var metricsClient = &http.Client{Timeout: 5 * time.Second}

// MetricValue returns the value of the unlabelled Prometheus metric name served at
// http://addr/metrics, waiting up to 20 s for the listener (a process starting).
func MetricValue(t testing.TB, addr, name string) float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := metricsClient.Get("http://" + addr + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(body), "\n") {
				if v, ok := strings.CutPrefix(line, name+" "); ok {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil {
						t.Fatalf("%s %q: %v", name, v, err)
					}
					return f
				}
			}
			t.Fatalf("no %s in the metrics on %s:\n%s", name, addr, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a listener that is starting
	}
}
