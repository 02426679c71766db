package kv_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
	"github.com/poolsuite/poolsuite/protocol/redis"
)

// heapInuse returns HeapInuse of this process, which the proxy under test runs in.
func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestClientNeverReads: a client pipelines 200,000 GETs of a 10 KB value and never
// reads. The proxy's memory stays bounded, other clients sharing the server connection
// keep their normal latency, and after client_write_timeout the stuck client is closed
// while the server connection keeps matching replies correctly.
func TestClientNeverReads(t *testing.T) {
	const (
		requests     = 200_000
		valueSize    = 10 << 10
		writeTimeout = 2 * time.Second
		heapBound    = 32 << 20 // far below the 2 GB the replies would take
	)
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "slow", rs, "  client_write_timeout: 2000\n  timeout: 5000\n")
	startProxy(t, parseConfig(t, yml), kv.Options{})
	ctx := context.Background()
	probe := newClient(t, addr)
	value := strings.Repeat("v", valueSize)
	// A long key makes the pipeline (26 MB) larger than the socket buffers can hold.
	bigKey := "big:" + strings.Repeat("k", 100)
	if err := probe.Set(ctx, bigKey, value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Latency of a healthy client before the slow one arrives.
	var before []time.Duration
	for i := 0; i < 200; i++ {
		start := time.Now()
		if err := probe.Get(ctx, bigKey).Err(); err != nil {
			t.Fatal(err)
		}
		before = append(before, time.Since(start))
	}
	var pipeline []byte
	for i := 0; i < requests; i++ {
		pipeline = redis.AppendCommandStrings(pipeline, "GET", bigKey)
	}
	runtime.GC()
	base := heapInuse()

	slow, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var sent atomic.Int64
	writeDone := make(chan error, 1)
	go func() {
		// Writes until the proxy stops reading and the socket buffers fill, or the
		// proxy closes the connection.
		_ = slow.SetWriteDeadline(time.Now().Add(30 * time.Second))
		n, err := slow.Write(pipeline)
		sent.Add(int64(n))
		writeDone <- err
	}()
	stuckAt := time.Now()

	// While the slow client is stuck (before its write timeout), a healthy client
	// keeps getting answers with normal latency, and the heap stays bounded.
	var during []time.Duration
	var peak uint64
	for time.Since(stuckAt) < writeTimeout*3/4 {
		start := time.Now()
		v, err := probe.Get(ctx, bigKey).Result()
		if err != nil || len(v) != valueSize {
			t.Fatalf("healthy client: %d bytes, %v", len(v), err)
		}
		during = append(during, time.Since(start))
		if len(during)%100 == 0 {
			runtime.GC() // live heap, not the garbage the GC has yet to collect
			peak = max(peak, heapInuse())
		}
	}
	if peak > base+heapBound {
		t.Errorf("HeapInuse grew from %d to %d bytes while a client did not read", base, peak)
	}
	p50 := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	if p50(during) > 10*p50(before)+20*time.Millisecond || slices.Max(during) > time.Second {
		t.Errorf("healthy client latency: p50 %v (before %v), max %v", p50(during), p50(before), slices.Max(during))
	}
	t.Logf("heap %d -> peak %d; healthy p50 %v before, %v during (%d requests), max %v; slow client sent %d bytes so far",
		base, peak, p50(before), p50(during), len(during), slices.Max(during), sent.Load())

	// The proxy closes the stuck client once its write timeout passes, with requests
	// unread: the client's blocked write then fails.
	select {
	case err := <-writeDone:
		if err == nil {
			t.Fatalf("the whole pipeline (%d bytes) was accepted: the proxy kept reading", len(pipeline))
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("stuck client not closed")
		}
	case <-time.After(writeTimeout + 20*time.Second):
		t.Fatal("stuck client not closed after its write timeout")
	}
	if took := time.Since(stuckAt); took < writeTimeout*7/8 {
		t.Errorf("stuck client closed after %v, before its write timeout %v", took, writeTimeout)
	}
	// Reading drains what the kernel buffered, then ends.
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, slow); errors.Is(err, os.ErrDeadlineExceeded) || n >= int64(requests)*valueSize {
		t.Fatalf("stuck client still served after close: read %d bytes, %v", n, err)
	}

	// The server connection still matches replies to requests.
	for i := 0; i < 100; i++ {
		k := "k" + itoa(i)
		if err := probe.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := probe.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("get %s = %d, %v", k, v, err)
		}
	}
	if v, err := probe.Get(ctx, bigKey).Result(); err != nil || v != value {
		t.Fatalf("get big: %d bytes, %v", len(v), err)
	}
}
