package sharding

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for Pool.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testKey returns the i-th of a fixed sequence of well-spread keys. (Keys that differ
// only in their last bytes, like "key:1", "key:2", have nearby fnv1a_64 hashes.)
func testKey(i int) []byte {
	return fmt.Appendf(nil, "%08x", hashMurmur(fmt.Append(nil, i)))
}

func keysOn(p *Pool, n int) map[int]int {
	on := map[int]int{}
	for i := range n {
		on[p.Pick(testKey(i))]++
	}
	return on
}

func TestPoolEjection(t *testing.T) {
	clock := newFakeClock()
	p, err := NewPool(PoolConfig{
		AutoEject:    true,
		FailureLimit: 2,
		RetryTimeout: 30 * time.Second,
		Now:          clock.Now,
	}, equalShards(3))
	if err != nil {
		t.Fatal(err)
	}
	before := keysOn(p, 3000)
	if len(before) != 3 {
		t.Fatalf("keys on %v", before)
	}
	server := NodeID{Shard: 1}
	if p.ReportFailure(server) {
		t.Fatal("ejected after one failure, limit is 2")
	}
	p.ReportSuccess(server) // resets the count
	if p.ReportFailure(server) {
		t.Fatal("ejected after a success and one failure")
	}
	if !p.ReportFailure(server) {
		t.Fatal("not ejected after two consecutive failures")
	}
	if p.Live(server) {
		t.Fatal("ejected server reported live")
	}
	if on := keysOn(p, 3000); on[1] != 0 || on[0]+on[2] != 3000 {
		t.Fatalf("after ejection keys on %v", on)
	}
	clock.Advance(30*time.Second - time.Nanosecond)
	if on := keysOn(p, 3000); on[1] != 0 {
		t.Fatalf("back before the retry timeout: %v", on)
	}
	clock.Advance(time.Nanosecond)
	if !p.Live(server) {
		t.Fatal("not live after the retry timeout")
	}
	if on := keysOn(p, 3000); fmt.Sprint(on) != fmt.Sprint(before) {
		t.Fatalf("after the retry timeout keys on %v, want %v", on, before)
	}
	// Back in, it takes FailureLimit new failures to eject it again.
	if p.ReportFailure(server) {
		t.Fatal("ejected again after one failure")
	}
}

func TestPoolEjectAll(t *testing.T) {
	clock := newFakeClock()
	p, _ := NewPool(PoolConfig{AutoEject: true, FailureLimit: 1, RetryTimeout: time.Second, Now: clock.Now}, equalShards(2))
	p.ReportFailure(NodeID{Shard: 0})
	p.ReportFailure(NodeID{Shard: 1})
	if got := p.Pick([]byte("k")); got != -1 {
		t.Fatalf("Pick with every server ejected = %d, want -1", got)
	}
	p.ReportSuccess(NodeID{Shard: 1}) // a success brings a server back at once
	if got := p.Pick([]byte("k")); got != 1 {
		t.Fatalf("Pick = %d, want 1", got)
	}
	clock.Advance(time.Second)
	if got := len(keysOn(p, 100)); got != 2 {
		t.Fatalf("keys on %d servers after the retry timeout", got)
	}
}

func TestPoolNoAutoEject(t *testing.T) {
	p, _ := NewPool(PoolConfig{FailureLimit: 1, RetryTimeout: time.Hour}, equalShards(3))
	before := keysOn(p, 1000)
	if p.ReportFailure(NodeID{Shard: 0}) {
		t.Fatal("a primary without replicas is reported ejected without auto-eject")
	}
	if p.Live(NodeID{Shard: 0}) {
		t.Fatal("health is tracked without auto-eject too")
	}
	if on := keysOn(p, 1000); fmt.Sprint(on) != fmt.Sprint(before) {
		t.Fatalf("placement changed without auto-eject: %v -> %v", before, on)
	}
}

func TestPoolOneShard(t *testing.T) {
	p, _ := NewPool(PoolConfig{Distribution: Modula}, []Shard{{Name: "only", Weight: 5}})
	for _, k := range []string{"", "a", "b"} {
		if got := p.Pick([]byte(k)); got != 0 {
			t.Fatalf("Pick(%q) = %d", k, got)
		}
	}
}

func TestPoolHash(t *testing.T) {
	p, _ := NewPool(PoolConfig{HashTag: "{}"}, equalShards(4))
	if p.Hash(nil) != 0 || p.Hash([]byte{}) != 0 {
		t.Error("empty key does not hash to 0")
	}
	if p.Hash([]byte("user:{apple}:x")) != 1488911807 {
		t.Error("hash tag not applied")
	}
	if p.Pick([]byte("a{k}")) != p.Pick([]byte("b{k}")) {
		t.Error("keys with the same tag on different servers")
	}
	if _, err := NewPool(PoolConfig{HashTag: "{"}, equalShards(2)); err == nil {
		t.Error("one-byte hash tag accepted")
	}
}

func TestPoolReplicas(t *testing.T) {
	clock := newFakeClock()
	shards := []Shard{{Name: "s0", Weight: 1, Replicas: 2}, {Name: "s1", Weight: 1}}
	p, err := NewPool(PoolConfig{AutoEject: true, FailureLimit: 1, RetryTimeout: time.Minute, Now: clock.Now}, shards)
	if err != nil {
		t.Fatal(err)
	}
	before := keysOn(p, 1000)
	// Replica failures never move keys.
	p.ReportFailure(NodeID{Shard: 0, Replica: 1})
	if on := keysOn(p, 1000); fmt.Sprint(on) != fmt.Sprint(before) {
		t.Fatal("a replica failure changed placement")
	}
	for range 100 {
		n, ok := p.PickRead(0, ReadReplica)
		if !ok || n != (NodeID{0, 2}) {
			t.Fatalf("PickRead(replica) = %v, %v; want the live replica 2", n, ok)
		}
		if n, _ := p.PickRead(0, ReadPrimary); n != (NodeID{0, 0}) {
			t.Fatalf("PickRead(primary) = %v", n)
		}
		if n, _ := p.PickRead(0, ReadPreferReplica); n != (NodeID{0, 2}) {
			t.Fatalf("PickRead(prefer-replica) = %v", n)
		}
		if n, _ := p.PickRead(0, ReadPreferPrimary); n != (NodeID{0, 0}) {
			t.Fatalf("PickRead(prefer-primary) = %v", n)
		}
	}
	p.ReportFailure(NodeID{Shard: 0, Replica: 2})
	if _, ok := p.PickRead(0, ReadReplica); ok {
		t.Fatal("PickRead(replica) with no live replica")
	}
	if n, _ := p.PickRead(0, ReadPreferReplica); n != (NodeID{0, 0}) {
		t.Fatalf("PickRead(prefer-replica) with no live replica = %v", n)
	}
	if _, ok := p.PickRead(1, ReadReplica); ok {
		t.Fatal("PickRead(replica) on a shard without replicas")
	}
	clock.Advance(time.Minute)
	seen := map[NodeID]bool{}
	for range 200 {
		n, _ := p.PickRead(0, ReadReplica)
		seen[n] = true
	}
	if len(seen) != 2 {
		t.Fatalf("replicas picked after the retry timeout: %v", seen)
	}
	// The primary's failure steers prefer-primary reads to replicas.
	p.ReportFailure(NodeID{Shard: 0})
	if n, _ := p.PickRead(0, ReadPreferPrimary); n.Replica == 0 {
		t.Fatal("prefer-primary read went to an ejected primary")
	}
}

func TestPoolBadNode(t *testing.T) {
	p, _ := NewPool(PoolConfig{}, equalShards(2))
	defer func() {
		if recover() == nil {
			t.Error("no panic for a replica that does not exist")
		}
	}()
	p.ReportFailure(NodeID{Shard: 0, Replica: 1})
}

// Run with -race: failures, successes and picks from many goroutines.
func TestPoolConcurrent(t *testing.T) {
	p, _ := NewPool(PoolConfig{AutoEject: true, FailureLimit: 3, RetryTimeout: time.Millisecond}, equalShards(5))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				n := NodeID{Shard: (g + i) % 5}
				switch i % 7 {
				case 0:
					p.ReportFailure(n)
				case 1:
					p.ReportSuccess(n)
				default:
					if s := p.Pick([]byte(fmt.Sprint(i))); s < -1 || s >= 5 {
						panic(fmt.Sprint("bad index ", s))
					}
				}
			}
		}()
	}
	wg.Wait()
}
