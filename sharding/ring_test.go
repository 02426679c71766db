package sharding

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

func equalShards(n int) []Shard {
	s := make([]Shard, n)
	for i := range s {
		s[i] = Shard{Name: fmt.Sprintf("10.0.%d.%d:6379", i/250, i%250+1), Weight: 1}
	}
	return s
}

// With equal weights, float32 rounding gives 156 points per server for some server
// counts, as in twemproxy.
func TestKetamaPointsQuirk(t *testing.T) {
	tests := []struct {
		n, points int
	}{
		{1, 160}, {2, 160}, {3, 160}, {7, 160}, {10, 160}, {20, 160},
		{25, 156}, {50, 156}, {100, 156}, {200, 156},
	}
	for _, tt := range tests {
		r, err := NewRing(Ketama, equalShards(tt.n), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(r.points); got != tt.n*tt.points {
			t.Errorf("%d servers: %d points, want %d per server", tt.n, got, tt.points)
		}
	}
}

func TestKetamaPointsWeighted(t *testing.T) {
	tests := []struct {
		weight, total uint32
		nlive         int
		want          uint32
	}{
		{1, 1, 1, 160},
		{1, 2, 2, 160},
		{2, 3, 2, 212}, // 2/3 * 40 * 2 = 53.33 -> 53 groups of 4
		{1, 3, 2, 104}, // 1/3 * 40 * 2 = 26.67 -> 26
		{1, 100, 2, 0}, // too light to get a point
		{5, 10, 3, 240},
	}
	for _, tt := range tests {
		if got := ketamaPoints(tt.weight, uint64(tt.total), tt.nlive); got != tt.want {
			t.Errorf("ketamaPoints(%d, %d, %d) = %d, want %d", tt.weight, tt.total, tt.nlive, got, tt.want)
		}
	}
}

func TestKetamaPointName(t *testing.T) {
	if got := string(ketamaPointName(nil, "server1", 8)); got != "server1-8" {
		t.Errorf("got %q", got)
	}
	long := string(make([]byte, 300))
	if got := len(ketamaPointName(nil, long, 1)); got != 272 {
		t.Errorf("long name cut to %d bytes, want 272", got)
	}
}

// refKetama is a slow, independent restatement of twemproxy's ketama.
func refKetama(servers []Shard, live []bool) func(uint32) int {
	type pt struct {
		v   uint32
		idx int
	}
	idx := make([]int, len(servers))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return CompareNames(servers[idx[a]].Name, servers[idx[b]].Name) < 0 })
	var total uint64
	nlive := 0
	for i := range servers {
		if live == nil || live[i] {
			total += uint64(servers[i].Weight)
			nlive++
		}
	}
	var pts []pt
	for _, i := range idx {
		if live != nil && !live[i] {
			continue
		}
		n := ketamaPoints(servers[i].Weight, total, nlive)
		for k := 0; k < int(n)/4; k++ {
			d := md5.Sum([]byte(fmt.Sprintf("%s-%d", servers[i].Name, k)))
			for a := range 4 {
				pts = append(pts, pt{binary.LittleEndian.Uint32(d[4*a:]), i})
			}
		}
	}
	sort.SliceStable(pts, func(a, b int) bool { return pts[a].v < pts[b].v })
	return func(h uint32) int {
		for _, p := range pts {
			if p.v >= h {
				return p.idx
			}
		}
		return pts[0].idx
	}
}

// refModula restates twemproxy's modula: a continuum with each live server repeated
// weight times in server order.
func refModula(servers []Shard, live []bool) func(uint32) int {
	idx := make([]int, len(servers))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return CompareNames(servers[idx[a]].Name, servers[idx[b]].Name) < 0 })
	var cont []int
	for _, i := range idx {
		if live == nil || live[i] {
			for range servers[i].Weight {
				cont = append(cont, i)
			}
		}
	}
	return func(h uint32) int { return cont[h%uint32(len(cont))] }
}

func TestRingMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	configs := []struct {
		name    string
		servers []Shard
		live    []bool
	}{
		{"equal", equalShards(5), nil},
		{"25 servers", equalShards(25), nil},
		{"weighted", []Shard{{Name: "b", Weight: 3}, {Name: "a", Weight: 1}, {Name: "ccc", Weight: 2}, {Name: "dd", Weight: 7}}, nil},
		{"some dead", equalShards(6), []bool{true, false, true, true, false, true}},
	}
	for _, c := range configs {
		for _, dist := range []Distribution{Ketama, Modula} {
			r, err := NewRing(dist, c.servers, c.live)
			if err != nil {
				t.Fatal(err)
			}
			ref := refKetama(c.servers, c.live)
			if dist == Modula {
				ref = refModula(c.servers, c.live)
			}
			for i := range 3000 {
				h := rng.Uint32()
				switch i {
				case 0:
					h = 0
				case 1:
					h = ^uint32(0)
				case 2:
					if dist == Ketama {
						h = r.points[len(r.points)-1] // the last point itself
					}
				}
				if got, want := r.Pick(h), ref(h); got != want {
					t.Fatalf("%s/%v: Pick(%d) = %d, want %d", c.name, dist, h, got, want)
				}
			}
		}
	}
}

// Input order does not matter: rings use twemproxy's order and answer in input indices.
func TestRingInputOrder(t *testing.T) {
	servers := equalShards(8)
	shuffled := append([]Shard(nil), servers...)
	perm := rand.Perm(len(shuffled))
	for i, j := range perm {
		shuffled[i] = servers[j]
	}
	for _, dist := range []Distribution{Ketama, Modula} {
		a, _ := NewRing(dist, servers, nil)
		b, _ := NewRing(dist, shuffled, nil)
		for h := uint32(0); h < 1<<32-1<<22; h += 1 << 22 {
			if servers[a.Pick(h)].Name != shuffled[b.Pick(h)].Name {
				t.Fatalf("%v: hash %d goes to different servers", dist, h)
			}
		}
	}
}

// Removing a server from a ketama ring moves only that server's keys.
func TestKetamaConsistency(t *testing.T) {
	servers := equalShards(10)
	all, _ := NewRing(Ketama, servers, nil)
	live := make([]bool, 10)
	for i := range live {
		live[i] = i != 4
	}
	less, _ := NewRing(Ketama, servers, live)
	moved := 0
	for i := range 100000 {
		h := hashFNV1a_64(testKey(i))
		a, b := all.Pick(h), less.Pick(h)
		if a != 4 && a != b {
			t.Fatalf("hash %d moved from %d to %d", h, a, b)
		}
		if b == 4 {
			t.Fatal("picked a dead server")
		}
		if a != b {
			moved++
		}
	}
	if moved < 5000 || moved > 15000 {
		t.Errorf("%d of 100000 keys moved, want about a tenth", moved)
	}
}

func TestRingEdgeCases(t *testing.T) {
	if _, err := NewRing(Ketama, nil, nil); err != ErrNoServers {
		t.Errorf("no servers: %v", err)
	}
	if _, err := NewRing(Ketama, []Shard{{Name: "a", Weight: 1}, {Name: "a", Weight: 2}}, nil); err == nil {
		t.Error("duplicate names accepted")
	}
	if _, err := NewRing(Modula, []Shard{{Name: "a"}}, nil); err == nil {
		t.Error("zero weight accepted")
	}
	if _, err := NewRing(Modula, equalShards(2), []bool{true}); err == nil {
		t.Error("short liveness accepted")
	}
	for _, dist := range []Distribution{Ketama, Modula, Random} {
		r, _ := NewRing(dist, equalShards(3), []bool{false, false, false})
		if got := r.Pick(7); got != -1 {
			t.Errorf("%v with no live server: Pick = %d", dist, got)
		}
		r, _ = NewRing(dist, equalShards(3), []bool{false, true, false})
		if got := r.Pick(7); got != 1 {
			t.Errorf("%v with one live server: Pick = %d", dist, got)
		}
	}
	r, _ := NewRing(Random, equalShards(4), []bool{true, false, true, true})
	seen := map[int]bool{}
	for range 1000 {
		seen[r.Pick(0)] = true
	}
	if len(seen) != 3 || seen[1] {
		t.Errorf("random picked %v", seen)
	}
}

func TestParseDistribution(t *testing.T) {
	for _, d := range []Distribution{Ketama, Modula, Random} {
		got, err := ParseDistribution(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDistribution(%q) = %v, %v", d.String(), got, err)
		}
	}
	if _, err := ParseDistribution("Ketama"); err == nil {
		t.Error("names are case-sensitive in twemproxy")
	}
}
