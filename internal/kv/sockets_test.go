package kv_test

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
)

// ss runs iproute2's ss with args and returns its output.
func ss(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, "ss"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ss %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// listenBacklog returns the backlog of the socket listening on addr, as ss shows it in
// the Send-Q column.
func listenBacklog(t *testing.T, addr string) int {
	t.Helper()
	out := strings.TrimSpace(ss(t, "-ltnH", "sport = :"+port(t, addr)))
	f := strings.Fields(out)
	if len(f) < 3 {
		t.Fatalf("ss: no listener on %s: %q", addr, out)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("ss: %q", out)
	}
	return n
}

// TestBacklog: backlog: is the listener's backlog, and a reload that keeps the
// listener changes it.
func TestBacklog(t *testing.T) {
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "bl", rs, "  backlog: 7\n")
	p := startProxy(t, parseConfig(t, yml), kv.Options{})
	if n := listenBacklog(t, addr); n != 7 {
		t.Fatalf("backlog %d, want 7", n)
	}
	yml = strings.Replace(yml, "backlog: 7", "backlog: 33", 1)
	if err := p.Reload(parseConfig(t, yml)); err != nil {
		t.Fatal(err)
	}
	if n := listenBacklog(t, addr); n != 33 {
		t.Fatalf("backlog after reload %d, want 33", n)
	}
}

// keepaliveTimers reports whether the proxy's side of the connections matching filter
// (an ss filter) has a keepalive timer.
func keepaliveTimers(t *testing.T, filter string) (sockets, withKeepalive int) {
	t.Helper()
	out := ss(t, "-tnoH", "state", "established", filter)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		sockets++
		if strings.Contains(line, "timer:(keepalive") {
			withKeepalive++
		}
	}
	return sockets, withKeepalive
}

// TestTCPKeepalive: tcpkeepalive: true turns keepalive on for the proxy's client and
// server sockets; without it they have none, as in twemproxy.
func TestTCPKeepalive(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(strconv.FormatBool(on), func(t *testing.T) {
			rs := startRedises(t, 1)
			yml, addr := poolYAML(t, "ka", rs, "  tcpkeepalive: "+strconv.FormatBool(on)+"\n")
			startProxy(t, parseConfig(t, yml), kv.Options{})
			c := dialRaw(t, addr)
			if r := c.cmd("SET", "k", "v"); r != "+OK\r\n" {
				t.Fatalf("SET: %q", r)
			}
			want := 0
			if on {
				want = 1
			}
			// The proxy's side of the client connection: source port is the pool's.
			if n, k := keepaliveTimers(t, "sport = :"+port(t, addr)); n != 1 || k != want {
				t.Errorf("client sockets %d, with keepalive %d, want 1 and %d", n, k, want)
			}
			// The proxy's side of the server connection: destination port is Redis'.
			if n, k := keepaliveTimers(t, "dport = :"+port(t, rs[0].Addr())); n != 1 || k != want {
				t.Errorf("server sockets %d, with keepalive %d, want 1 and %d", n, k, want)
			}
		})
	}
}

// TestClientTimeout: with client_timeout, an idle client is closed after it, a busy one
// is not.
func TestClientTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "idle", rs, "  client_timeout: 400\n")
	startProxy(t, parseConfig(t, yml), kv.Options{})

	// A client that keeps sending requests for three times the timeout stays open.
	busy := dialRaw(t, addr)
	start := time.Now()
	// idleFrom: when the last request was sent. The proxy read it, so counts the
	// client idle from, later than that.
	var idleFrom time.Time
	for time.Since(start) < 3*idle {
		idleFrom = time.Now()
		if r := busy.cmd("SET", "k", "v"); r != "+OK\r\n" {
			t.Fatalf("SET: %q", r)
		}
	}
	// Then, idle, it is closed after the timeout.
	_ = busy.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(busy.nc)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("idle client not closed")
	}
	if took := time.Since(idleFrom); took < idle {
		t.Errorf("idle client closed after %v, before client_timeout %v", took, idle)
	}
	// Without client_timeout clients may stay idle.
	yml2, addr2 := poolYAML(t, "forever", rs, "")
	startProxy(t, parseConfig(t, yml2), kv.Options{})
	c := dialRaw(t, addr2)
	_ = c.nc.SetReadDeadline(time.Now().Add(3 * idle))
	if _, err := c.nc.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle client without client_timeout: %v", err)
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if r := c.cmd("PING"); r != "+PONG\r\n" {
		t.Fatalf("PING: %q", r)
	}
}
