package kvmemcache_test

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// BenchmarkGetC50 runs 50 connections, each sending one get of a 32-byte value at a
// time, through the proxy to 4 real memcached servers: the shape where per-request
// costs (hand-offs between goroutines, syscalls, allocations) dominate. The load runs
// in this process, so the profile shows it too.
func BenchmarkGetC50(b *testing.B) {
	ms := startMemcacheds(b, 4)
	addr := freeAddr(b)
	startProxy(b, parseConfig(b, poolYAML("bench", addr, ms, true, "  hash: fnv1a_64\n  distribution: ketama\n")), kv.Options{})
	const conns, keys = 50, 1000
	c := dialText(b, addr)
	val := bytes.Repeat([]byte("v"), 32)
	for i := 0; i < keys; i++ {
		if r := c.do(fmt.Sprintf("set k%d 0 0 %d\r\n%s\r\n", i, len(val), val)); r != "STORED\r\n" {
			b.Fatalf("set: %q", r)
		}
	}
	runC50(b, addr, conns, func(i int) []byte { return fmt.Appendf(nil, "get k%d\r\n", i%keys) },
		func(buf []byte) bool { return bytes.HasSuffix(buf, []byte("END\r\n")) })
}

// runC50 drives b.N requests over conns connections, one request in flight each;
// done reports whether buf holds the whole reply.
func runC50(b *testing.B, addr string, conns int, req func(int) []byte, done func([]byte) bool) {
	b.Helper()
	ncs := make([]net.Conn, conns)
	for i := range ncs {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { nc.Close() })
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Minute))
		ncs[i] = nc
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for i := range ncs {
		wg.Add(1)
		go func(nc net.Conn, seed int) {
			defer wg.Done()
			buf := make([]byte, 4096)
			reqs := make([][]byte, 64)
			for j := range reqs {
				reqs[j] = req(seed*64 + j)
			}
			for k := 0; next.Add(1) <= int64(b.N); k++ {
				if _, err := nc.Write(reqs[k%len(reqs)]); err != nil {
					failed.Store(err)
					return
				}
				got := 0
				for !done(buf[:got]) {
					n, err := nc.Read(buf[got:])
					if err != nil {
						failed.Store(err)
						return
					}
					got += n
				}
			}
		}(ncs[i], i)
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}
