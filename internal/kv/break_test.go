package kv_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/internal/testenv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// fakeRedis answers "+OK" to every request, except that on its first connection it
// answers only the first `answer` of the first `expect` requests and then closes it.
func fakeRedis(t *testing.T, expect, answer int) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for first := true; ; first = false {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(nc, first, expect, answer)
		}
	}()
	return ln
}

func serveFake(nc net.Conn, breakIt bool, expect, answer int) {
	defer nc.Close()
	var buf []byte
	var req redis.Request
	tmp := make([]byte, 4096)
	seen := 0
	for {
		n, err := nc.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		var out []byte
		for {
			m, perr := redis.ParseRequest(buf, &req, redis.Limits{})
			if perr != nil || m == 0 {
				break
			}
			buf = buf[m:]
			seen++
			if !breakIt || seen <= answer {
				out = append(out, "+OK\r\n"...)
			}
		}
		nc.Write(out)
		if breakIt && seen >= expect {
			return
		}
	}
}

// TestBrokenServerConnection: when a server connection breaks, exactly the requests
// in flight on it fail, and the next request goes out on a new connection.
func TestBrokenServerConnection(t *testing.T) {
	ln := fakeRedis(t, 5, 2)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	yml := "fake:\n  listen: " + listen + "\n  redis: true\n  timeout: 2000\n  servers:\n    - " + ln.Addr().String() + ":1 f\n"
	startProxy(t, parseConfig(t, yml), kv.Options{})
	c := dialRaw(t, listen)
	var pipe []byte
	for i := 0; i < 5; i++ {
		pipe = redis.AppendCommandStrings(pipe, "SET", fmt.Sprint("k", i), "v")
	}
	c.send(string(pipe))
	var got []string
	for i := 0; i < 5; i++ {
		got = append(got, strings.TrimSpace(c.reply()))
	}
	want := []string{"+OK", "+OK", "-ERR unknown", "-ERR unknown", "-ERR unknown"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("replies = %q, want %q", got, want)
	}
	if r := c.cmd("SET", "after", "v"); r != "+OK\r\n" {
		t.Fatalf("after reconnect: %q", r)
	}
}

// TestMalformedClosesConnection: a client breaking the protocol is disconnected; the
// replies to its earlier requests are still sent.
func TestMalformedClosesConnection(t *testing.T) {
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "mal", rs, "")
	startProxy(t, parseConfig(t, yml), kv.Options{})
	c := dialRaw(t, addr)
	c.send("PING\r\n*1\r\n+bad\r\n")
	if r := c.reply(); r != "+PONG\r\n" {
		t.Fatalf("ping = %q", r)
	}
	buf := make([]byte, 16)
	if n, err := c.nc.Read(buf); err == nil {
		t.Fatalf("connection still open, read %q", buf[:n])
	}
}
