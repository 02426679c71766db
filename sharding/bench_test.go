package sharding

import (
	"testing"
	"time"
)

var benchKey = []byte("user:{1234567}:session:token")

func BenchmarkHash(b *testing.B) {
	for _, name := range HashNames() {
		h, _ := LookupHash(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchKey)))
			for b.Loop() {
				h(benchKey)
			}
		})
	}
}

func BenchmarkHashKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		HashKey(benchKey, "{}")
	}
}

func BenchmarkRingPick(b *testing.B) {
	for _, dist := range []Distribution{Ketama, Modula, Random} {
		r, _ := NewRing(dist, equalShards(64), nil)
		b.Run(dist.String(), func(b *testing.B) {
			b.ReportAllocs()
			h := uint32(0)
			for b.Loop() {
				h += 0x9e3779b9
				r.Pick(h)
			}
		})
	}
}

// BenchmarkPoolPick is the whole per-key path: hash tag, hash, ring lookup.
func BenchmarkPoolPick(b *testing.B) {
	p, _ := NewPool(PoolConfig{HashTag: "{}", AutoEject: true, FailureLimit: 2, RetryTimeout: time.Minute}, equalShards(64))
	b.Run("all-live", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Pick(benchKey)
		}
	})
	p.ReportFailure(NodeID{Shard: 3})
	p.ReportFailure(NodeID{Shard: 3})
	b.Run("one-ejected", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Pick(benchKey)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.Pick(benchKey)
			}
		})
	})
}

func BenchmarkPoolPickRead(b *testing.B) {
	p, _ := NewPool(PoolConfig{}, []Shard{{Name: "a", Weight: 1, Replicas: 2}, {Name: "b", Weight: 1, Replicas: 2}})
	b.ReportAllocs()
	for b.Loop() {
		p.PickRead(1, ReadPreferReplica)
	}
}

// TestZeroAllocs checks the hot paths do not allocate, outside of benchmarks too.
func TestZeroAllocs(t *testing.T) {
	p, _ := NewPool(PoolConfig{HashTag: "{}", AutoEject: true}, equalShards(16))
	r, _ := NewRing(Modula, equalShards(16), nil)
	checks := map[string]func(){
		"Pool.Pick":     func() { p.Pick(benchKey) },
		"Pool.PickRead": func() { p.PickRead(2, ReadPreferPrimary) },
		"Ring.Pick":     func() { r.Pick(12345) },
	}
	for _, name := range HashNames() {
		h, _ := LookupHash(name)
		checks[name] = func() { h(benchKey) }
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
