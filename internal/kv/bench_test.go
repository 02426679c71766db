package kv_test

import (
	"testing"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// BenchmarkProxyPipeline16 sends pipelines of 16 GETs and one 8-key MGET (split over
// the servers) through the proxy to 4 real redis-servers. allocs/op counts the test
// client's reads too.
func BenchmarkProxyPipeline16(b *testing.B) {
	rs := startRedises(b, 4)
	yml, addr := poolYAML(b, "bench", rs, "  hash: murmur\n")
	startProxy(b, parseConfig(b, yml), kv.Options{})
	c := dialRaw(b, addr)
	var pipe []byte
	for i := 0; i < 16; i++ {
		pipe = redis.AppendCommandStrings(pipe, "GET", "key"+string(rune('a'+i)))
	}
	pipe = redis.AppendCommandStrings(pipe, "MGET", "a", "b", "c", "d", "e", "f", "g", "h")
	want := 0
	c.send(string(pipe))
	for j := 0; j < 17; j++ {
		want += len(c.reply())
	}
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.nc.Write(pipe); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < want; {
			n, err := c.nc.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
