package kv_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// Outcomes of a request besides a reply (see exchange).
const (
	closedConn = "<connection closed>"
	noReply    = "<no reply>"
)

// exchange sends each request in turn on one new connection to addr and returns what
// came back for each: the reply, closedConn when the proxy closed the connection
// (EOF or reset) instead, or noReply when nothing came within 3 s. It stops at the
// first request not answered with a reply.
func exchange(t *testing.T, addr string, reqs ...[]string) []string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var out []string
	var rd []byte
	buf := make([]byte, 4096)
	for _, args := range reqs {
		if _, err := nc.Write(redis.AppendCommandStrings(nil, args...)); err != nil {
			return append(out, closedConn)
		}
		_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			n, err := redis.ReplyLen(rd, 0)
			if err != nil {
				t.Fatalf("%q: bad reply %q: %v", args, rd, err)
			}
			if n > 0 {
				out = append(out, string(rd[:n]))
				rd = rd[n:]
				break
			}
			m, err := nc.Read(buf)
			rd = append(rd, buf[:m]...)
			switch {
			case err == nil:
				continue
			case errors.Is(err, os.ErrDeadlineExceeded):
				return append(out, noReply)
			case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
				return append(out, closedConn)
			default:
				t.Fatalf("%q: read: %v", args, err)
			}
		}
	}
	return out
}

// proxyPair starts nutcracker and kvproxy on one pool: settings (indented YAML lines)
// and servers ("host:port:weight name" each). It returns their listen addresses.
func proxyPair(t *testing.T, settings string, servers ...string) (tw, kvp string) {
	t.Helper()
	tw = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	kvp = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	pool := func(addr string) string {
		return "p:\n  listen: " + addr + "\n  redis: true\n" + settings + "  servers:\n    - " + strings.Join(servers, "\n    - ") + "\n"
	}
	testenv.StartNutcracker(t, pool(tw), tw)
	startProxy(t, parseConfig(t, pool(kvp)), kv.Options{})
	return tw, kvp
}

// sameExchange runs reqs on nutcracker and kvproxy and requires the same outcome of
// each request.
func sameExchange(t *testing.T, what, tw, kvp string, reqs ...[]string) {
	t.Helper()
	a, b := exchange(t, tw, reqs...), exchange(t, kvp, reqs...)
	if strings.Join(a, "|") != strings.Join(b, "|") {
		t.Errorf("%s:\nnutcracker %q\nkvproxy    %q", what, a, b)
	}
}

// TestErrorRepliesMatchNutcracker sends the same requests to Debian's nutcracker and
// to kvproxy, each in front of the same servers, and requires the same error replies,
// byte for byte, and the same connection behaviour: a server down (connection
// refused), a server frozen (timed out), a request over the pool's timeout (the client
// stays connected on both), the proxy's own NOAUTH before AUTH, a redis_auth the
// servers refuse (Redis's NOAUTH for each request) and a redis_auth on servers without
// a password (requests served). A DEL, UNLINK, EXISTS, TOUCH, MSET or MGET touching a
// failed server is answered with one error for the whole command by both, the failed
// server's text, never a partial count nor an array holding errors. The deliberate
// differences: a failed MGET makes nutcracker close the client's connection after its
// error, while kvproxy keeps it (the client's other requests go on); a multi-key
// EXISTS whose first key is on a live server is counted by that server alone in
// nutcracker, while kvproxy splits it and answers the dead server's error.
func TestErrorRepliesMatchNutcracker(t *testing.T) {
	rs := startRedises(t, 2)
	live, frozen := rs[0], rs[1]
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing listens there

	t.Run("server down", func(t *testing.T) {
		settings := "  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n"
		servers := []string{live.Addr() + ":1 s0", dead + ":1 s1", frozen.Addr() + ":1 s2"}
		tw, kvp := proxyPair(t, settings, servers...)
		keys := keysByShard(t, parseConfig(t, "p:\n  listen: 127.0.0.1:1\n  redis: true\n"+settings+
			"  servers:\n    - "+strings.Join(servers, "\n    - ")+"\n").Pools[0], 2)
		up, down, froze := keys["s0"], keys["s1"], keys["s2"]
		frozen.Freeze()
		defer frozen.Thaw()
		const refused, timedOut = "-ERR Connection refused\r\n", "-ERR Connection timed out\r\n"
		reqs := [][]string{{"GET", down[0]}, {"SET", down[1], "v"}, {"SET", up[1], "v"}, {"SET", up[0], "v"},
			{"DEL", down[0]}, {"MSET", up[0], "1", down[0], "1"},
			{"DEL", up[0], down[0]}, {"UNLINK", up[0], down[0]}, {"EXISTS", down[0], up[0]}, {"TOUCH", up[0], down[0]},
			{"DEL", up[0], froze[0]}, {"MSET", froze[0], "1", up[0], "2"}, {"GET", up[0]}, {"PING"}}
		sameExchange(t, "requests touching the failed servers", tw, kvp, reqs...)
		if got := exchange(t, kvp, reqs[6:11]...); strings.Join(got, "") != refused+refused+refused+refused+timedOut {
			t.Errorf("multi-key commands on failed servers through kvproxy: %q, want one error each", got)
		}
		// nutcracker 0.5 sends a multi-key EXISTS whole to its first key's server, which
		// counts what it holds; kvproxy splits it like DEL, so the dead server's part
		// makes it one error.
		exists := []string{"EXISTS", up[1], down[0], up[1]}
		if a := exchange(t, tw, exists, []string{"PING"}); strings.Join(a, "|") != ":2\r\n|+PONG\r\n" {
			t.Errorf("%q through nutcracker: %q, want the first key's server's count", exists, a)
		}
		if b := exchange(t, kvp, exists, []string{"PING"}); strings.Join(b, "|") != refused+"|+PONG\r\n" {
			t.Errorf("%q through kvproxy: %q, want %q and the connection kept", exists, b, refused)
		}
		// MGET: both answer one error, the failed server's; nutcracker then closes the
		// connection, kvproxy keeps it.
		for _, tc := range []struct {
			keys []string
			want string
		}{
			{[]string{down[0], down[1]}, refused},
			{[]string{up[1], down[0]}, refused},
			{[]string{down[0], up[1], up[0]}, refused},
			{[]string{up[1], froze[0]}, timedOut},
			{[]string{froze[0], froze[1], up[1]}, timedOut},
		} {
			req := append([]string{"MGET"}, tc.keys...)
			if a := exchange(t, tw, req, []string{"PING"}); strings.Join(a, "|") != tc.want+"|"+closedConn {
				t.Errorf("%q through nutcracker: %q, want %q, then the connection closed", req, a, tc.want)
			}
			if b := exchange(t, kvp, req, []string{"PING"}); strings.Join(b, "|") != tc.want+"|+PONG\r\n" {
				t.Errorf("%q through kvproxy: %q, want %q and the connection kept", req, b, tc.want)
			}
		}
	})

	t.Run("timeout", func(t *testing.T) {
		// Each proxy has a server of its own: the script keeps a server busy for about
		// 0.4 s on this kind of machine (longer on a slower or loaded one), four times the
		// pool's timeout, and well under Redis's 5 s before it answers BUSY.
		rs := startRedises(t, 2)
		settings := "  timeout: 100\n"
		tw := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		kvp := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		testenv.StartNutcracker(t, "p:\n  listen: "+tw+"\n  redis: true\n"+settings+"  servers:\n    - "+rs[0].Addr()+":1 s0\n", tw)
		startProxy(t, parseConfig(t, "p:\n  listen: "+kvp+"\n  redis: true\n"+settings+"  servers:\n    - "+rs[1].Addr()+":1 s0\n"), kv.Options{})
		slow := []string{"EVAL", "local x = 0; for i = 1, 100000000 do x = x + i end; return x", "1", "k"}
		sameExchange(t, "request over the timeout", tw, kvp, slow, []string{"PING"})
		// Redis answers a direct PING once the script has ended; then the client that
		// timed out is served again through kvproxy.
		exchange(t, rs[1].Addr(), []string{"PING"})
		if got := exchange(t, kvp, []string{"ECHO", "x"}); got[0] != "$1\r\nx\r\n" {
			t.Errorf("after the timeout: %q", got)
		}
	})

	t.Run("auth", func(t *testing.T) {
		pw := startRedises(t, 1, "--requirepass", "hellopasswd")[0]
		// The proxy's password is not the server's: nutcracker's AUTH to the server
		// fails and Redis answers NOAUTH to each request; kvproxy answers the same.
		tw, kvp := proxyPair(t, "  redis_auth: badpasswd\n", pw.Addr()+":1 s0")
		sameExchange(t, "server refusing the proxy's password", tw, kvp,
			[]string{"PING"}, []string{"GET", "k"}, []string{"AUTH", "nope"}, []string{"AUTH", "badpasswd"},
			[]string{"PING"}, []string{"GET", "k"}, []string{"SET", "k", "v"})
		// A multi-key command the server refuses: nutcracker answers "-ERR Invalid
		// argument" (its merge finds error replies), kvproxy the server's own error.
		if got := exchange(t, kvp, []string{"AUTH", "badpasswd"}, []string{"DEL", "k", "j"}); got[1] != "-NOAUTH Authentication required.\r\n" {
			t.Errorf("DEL through kvproxy: %q", got)
		}
		// The servers have no password: the proxy's AUTH to them is refused, requests
		// are served all the same.
		tw, kvp = proxyPair(t, "  redis_auth: hellopasswd\n", live.Addr()+":1 s0")
		sameExchange(t, "server without a password", tw, kvp,
			[]string{"GET", "k"}, []string{"AUTH", "hellopasswd"}, []string{"SET", "auth:k", "v"},
			[]string{"GET", "auth:k"}, []string{"DEL", "auth:k"})
		// No redis_auth: the proxy refuses AUTH, the server's NOAUTH passes.
		tw, kvp = proxyPair(t, "", pw.Addr()+":1 s0")
		sameExchange(t, "proxy without a password", tw, kvp,
			[]string{"PING"}, []string{"AUTH", "x"}, []string{"GET", "k"})
	})
}
