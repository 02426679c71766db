package kv_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/poolsuite/poolsuite/internal/kv"
)

// TestIdleClientMemory opens many clients that each make one request and then stay
// idle, and checks what each costs the proxy: no goroutine (the connection is parked,
// see park.go) and no read buffer held while idle (before, two goroutines and about
// 14 KB of heap and stacks per client; with the writer started on demand, one
// goroutine and about 7 KB; parked, and keeping no request for reuse, about 2.5 KB,
// client side included).
func TestIdleClientMemory(t *testing.T) {
	rs := startRedises(t, 1)
	yml, addr := poolYAML(t, "idle", rs, "")
	p := startProxy(t, parseConfig(t, yml), kv.Options{})
	const n = 1000
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// Warm up one client so the proxy's server connection is open.
	dialRaw(t, addr).cmd("GET", "warm")
	measure := func() (int, uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse + ms.StackInuse
	}
	g0, m0 := measure()
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		if _, err := nc.Write([]byte("*2\r\n$3\r\nGET\r\n$4\r\nidle\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if k, err := nc.Read(buf); err != nil || string(buf[:k]) != "$-1\r\n" {
			t.Fatalf("reply %q: %v", buf[:k], err)
		}
	}
	// Every reply was read, but the proxy's goroutines may not have parked yet: wait
	// (bounded) until the goroutine count stops falling.
	var g1 int
	var m1 uint64
	for i := 0; i < 50; i++ {
		g1, m1 = measure()
		if g1-g0 <= n/20 {
			break
		}
		runtime.Gosched()
	}
	perG := float64(g1-g0) / n
	perB := float64(int64(m1)-int64(m0)) / n
	t.Logf("per idle client: %.2f goroutines, %.0f bytes (heap+stack, client side included)", perG, perB)
	if kv.ParkedClients(p) >= 0 && perG > 0.05 {
		t.Errorf("%.2f goroutines per idle client, want none (parked)", perG)
	}
	if raceMargin == 0 && perB > 4<<10 { // the race detector's shadow memory adds its own
		t.Errorf("%.0f bytes per idle client, want at most 4 KiB (its connection and session)", perB)
	}
}
