package sharding

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ErrNoServers is returned by NewRing and NewPool for an empty server list.
var ErrNoServers = errors.New("sharding: no servers")

// Shard is a server as distributions see it: the name that is hashed and a weight. When
// the server has replicas, they share its name and placement.
type Shard struct {
	// Name is the server's name as twemproxy hashes it (see ServerSpec.Name). Names must
	// be unique within a pool.
	Name string
	// Weight is the server's share of keys, at least 1.
	Weight uint32
	// Replicas is the number of replicas of this server (0 if none). Replicas never
	// change where keys are placed; Ring ignores this field.
	Replicas int
}

// Ring maps hashes to servers for one distribution over a fixed set of live servers. A
// Ring is immutable and safe for concurrent use; to change which servers are live, build
// a new one (Pool does that).
type Ring struct {
	dist Distribution
	// live holds the indices of the live servers in twemproxy's server order.
	live []int32

	// ketama: the continuum, sorted by point value.
	points []uint32
	owners []int32

	// modula: cumulative weights of live, so live[i] owns [cum[i-1], cum[i]).
	cum []uint64
}

// NewRing builds a ring over the servers for which live is true (all of them if live is
// nil; otherwise len(live) must equal len(servers)). Servers may be given in any order:
// the ring orders them as twemproxy does (CompareNames) and Pick returns indices into
// servers. A ring with no live server is valid: its Pick returns -1.
func NewRing(dist Distribution, servers []Shard, live []bool) (*Ring, error) {
	order, err := serverOrder(servers)
	if err != nil {
		return nil, err
	}
	if live != nil && len(live) != len(servers) {
		return nil, fmt.Errorf("sharding: %d liveness flags for %d servers", len(live), len(servers))
	}
	return buildRing(dist, servers, order, live), nil
}

// serverOrder checks servers and returns their indices in twemproxy's order.
func serverOrder(servers []Shard) ([]int32, error) {
	if len(servers) == 0 {
		return nil, ErrNoServers
	}
	if len(servers) > math.MaxInt32 {
		return nil, fmt.Errorf("sharding: too many servers (%d)", len(servers))
	}
	order := make([]int32, len(servers))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return CompareNames(servers[a].Name, servers[b].Name) })
	var total uint64
	for i, idx := range order {
		total += uint64(servers[idx].Weight)
		if servers[idx].Weight == 0 {
			return nil, fmt.Errorf("sharding: server %q has weight 0", servers[idx].Name)
		}
		if i > 0 && servers[order[i-1]].Name == servers[idx].Name {
			return nil, fmt.Errorf("sharding: two servers are named %q", servers[idx].Name)
		}
	}
	if total > math.MaxUint32 {
		return nil, fmt.Errorf("sharding: total weight %d does not fit in 32 bits", total)
	}
	return order, nil
}

// buildRing builds the ring; order is the result of serverOrder(servers).
func buildRing(dist Distribution, servers []Shard, order []int32, live []bool) *Ring {
	r := &Ring{dist: dist}
	var total uint64
	for _, idx := range order {
		if live == nil || live[idx] {
			r.live = append(r.live, idx)
			total += uint64(servers[idx].Weight)
		}
	}
	switch dist {
	case Ketama:
		r.points, r.owners = ketamaContinuum(servers, r.live, total)
	case Modula:
		r.cum = make([]uint64, len(r.live))
		var sum uint64
		for i, idx := range r.live {
			sum += uint64(servers[idx].Weight)
			r.cum[i] = sum
		}
	}
	return r
}

// Distribution returns the ring's distribution.
func (r *Ring) Distribution() Distribution { return r.dist }

// Live returns the number of live servers in the ring.
func (r *Ring) Live() int { return len(r.live) }

// Pick returns the index (into the servers given to NewRing) of the server that owns
// hash, or -1 if no server is live. Random ignores hash. Pick does not allocate.
func (r *Ring) Pick(hash uint32) int {
	switch {
	case len(r.live) == 0:
		return -1
	case len(r.live) == 1:
		return int(r.live[0])
	}
	switch r.dist {
	case Ketama:
		return int(r.owners[ketamaSearch(r.points, hash)])
	case Modula:
		slot := uint64(hash) % r.cum[len(r.cum)-1]
		// The first live server whose cumulative weight exceeds slot.
		lo, hi := 0, len(r.cum)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if r.cum[mid] <= slot {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return int(r.live[lo])
	default:
		return int(r.live[rand.IntN(len(r.live))])
	}
}
