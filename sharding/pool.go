package sharding

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// PoolConfig configures a Pool. The zero value is twemproxy's ketama with fnv1a_64, no
// hash tag and no ejection.
type PoolConfig struct {
	// Distribution maps hashes to servers (zero: Ketama).
	Distribution Distribution
	// Hash hashes keys (nil: fnv1a_64, twemproxy's default).
	Hash HashFunc
	// HashTag is empty or two bytes, such as "{}" (see HashKey).
	HashTag string
	// AutoEject is twemproxy's auto_eject_hosts: when true, a primary with FailureLimit
	// consecutive failures leaves the ring for RetryTimeout and its keys move to the other
	// servers. When false, failures never change placement (they still steer reads away
	// under ReadPreferPrimary).
	AutoEject bool
	// FailureLimit is twemproxy's server_failure_limit: the number of consecutive
	// failures after which a server is ejected. Zero acts as 1, as in twemproxy.
	FailureLimit int
	// RetryTimeout is twemproxy's server_retry_timeout: how long an ejected server stays
	// out. After it, the server is live again (and back in the ring) until it fails
	// FailureLimit more times. Zero means it is back at once.
	RetryTimeout time.Duration
	// Now is the clock (nil: time.Now). Tests set it.
	Now func() time.Time
}

// NodeID names one server of a Pool: Shard is the index of the shard in the slice given
// to NewPool, Replica is 0 for the shard's primary and 1..Shard.Replicas for its replicas.
type NodeID struct {
	Shard, Replica int
}

// Pool places keys on the shards of one pool and tracks the health of every server
// (primaries and replicas) to eject failing ones the way twemproxy does. Placement
// depends only on the primaries: the ring is built from the primaries that are live (all
// of them unless AutoEject) and is rebuilt when that set changes. Replicas only serve
// reads, chosen by PickRead.
//
// All methods are safe for concurrent use. Pick, PickRead, Hash and Live take no lock
// and do not allocate; they read the clock only while some server is ejected.
type Pool struct {
	cfg    PoolConfig
	hash   HashFunc
	limit  int32
	retry  int64 // RetryTimeout in nanoseconds
	shards []Shard
	order  []int32 // shard indices in twemproxy's order
	base   []int   // base[i] is the index in nodes of shard i's primary
	nodes  []nodeHealth

	mu  sync.Mutex // serialises rebuilds of cur
	cur atomic.Pointer[placement]
}

// nodeHealth is the failure state of one server.
type nodeHealth struct {
	failures     atomic.Int32 // consecutive failures since the last success or ejection
	ejectedUntil atomic.Int64 // Unix nanoseconds until which the server is out; 0 if in
}

// placement is an immutable ring with the time it must be rebuilt at.
type placement struct {
	ring        *Ring
	nextRebuild int64 // Unix nanoseconds when an ejected primary is due back; 0 if none
}

// NewPool returns a pool over shards, all live. Shards may be in any order (the ring uses
// twemproxy's order internally); indices in NodeID and from Pick refer to shards. Names
// must be unique and weights at least 1. The pool keeps its own copy of shards.
func NewPool(cfg PoolConfig, shards []Shard) (*Pool, error) {
	order, err := serverOrder(shards)
	if err != nil {
		return nil, err
	}
	if len(cfg.HashTag) != 0 && len(cfg.HashTag) != 2 {
		return nil, fmt.Errorf("sharding: hash tag %q is not two bytes", cfg.HashTag)
	}
	if cfg.Distribution > Random {
		return nil, fmt.Errorf("sharding: unknown distribution %v", cfg.Distribution)
	}
	p := &Pool{
		cfg:    cfg,
		hash:   cfg.Hash,
		limit:  int32(max(1, min(cfg.FailureLimit, 1<<30))),
		retry:  int64(max(0, cfg.RetryTimeout)),
		shards: append([]Shard(nil), shards...),
		order:  order,
		base:   make([]int, len(shards)),
	}
	if p.hash == nil {
		p.hash = hashFNV1a_64
	}
	n := 0
	for i, s := range shards {
		if s.Replicas < 0 {
			return nil, fmt.Errorf("sharding: server %q has %d replicas", s.Name, s.Replicas)
		}
		p.base[i] = n
		n += 1 + s.Replicas
	}
	p.nodes = make([]nodeHealth, n)
	p.mu.Lock()
	p.rebuildLocked()
	p.mu.Unlock()
	return p, nil
}

func (p *Pool) now() int64 {
	if p.cfg.Now != nil {
		return p.cfg.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// Len returns the number of shards.
func (p *Pool) Len() int { return len(p.shards) }

// Hash returns the hash that places key: the hash of HashKey(key, HashTag), or 0 for an
// empty key, as in twemproxy.
func (p *Pool) Hash(key []byte) uint32 {
	k := HashKey(key, p.cfg.HashTag)
	if len(k) == 0 {
		return 0
	}
	return p.hash(k)
}

// Pick returns the index of the shard that owns key, or -1 if no primary is live (all
// ejected). With one shard, or the Random distribution, the key is not hashed.
func (p *Pool) Pick(key []byte) int {
	r := p.Ring()
	if len(p.shards) == 1 || r.dist == Random {
		return r.Pick(0)
	}
	return r.Pick(p.Hash(key))
}

// Ring returns the current ring, first rebuilding it if an ejected primary's retry time
// has passed.
func (p *Pool) Ring() *Ring {
	pl := p.cur.Load()
	if pl.nextRebuild != 0 && p.now() >= pl.nextRebuild {
		// Whoever gets the lock rebuilds; the others go on with the old ring meanwhile.
		if p.mu.TryLock() {
			if p.cur.Load() == pl {
				p.rebuildLocked()
			}
			p.mu.Unlock()
		}
		pl = p.cur.Load()
	}
	return pl.ring
}

// rebuildLocked builds the ring from the primaries that are live now. p.mu must be held.
func (p *Pool) rebuildLocked() {
	now := p.now()
	var live []bool
	var next int64
	if p.cfg.AutoEject {
		live = make([]bool, len(p.shards))
		for i := range p.shards {
			h := &p.nodes[p.base[i]]
			until := h.ejectedUntil.Load()
			if until != 0 && now >= until {
				h.ejectedUntil.CompareAndSwap(until, 0)
				until = 0
			}
			live[i] = until == 0
			if until != 0 && (next == 0 || until < next) {
				next = until
			}
		}
	}
	p.cur.Store(&placement{
		ring:        buildRing(p.cfg.Distribution, p.shards, p.order, live),
		nextRebuild: next,
	})
}

func (p *Pool) health(n NodeID) *nodeHealth {
	if n.Shard < 0 || n.Shard >= len(p.shards) || n.Replica < 0 || n.Replica > p.shards[n.Shard].Replicas {
		panic(fmt.Sprintf("sharding: no server %+v in pool", n))
	}
	return &p.nodes[p.base[n.Shard]+n.Replica]
}

// Live reports whether server n is in service: it has not been ejected, or its retry
// time has passed. It panics if n names no server of the pool.
func (p *Pool) Live(n NodeID) bool {
	until := p.health(n).ejectedUntil.Load()
	return until == 0 || p.now() >= until
}

// ReportFailure records a failure of server n (a refused or broken connection, a
// timeout). A connection made is no success: only ReportSuccess (a reply) clears the
// count. After FailureLimit consecutive failures the server is marked down for
// RetryTimeout (Live reports false). ReportFailure returns true when that ejects it,
// that is when being down changes where requests go: a primary leaves the ring if
// AutoEject is set; a server of a shard with replicas stops serving reads (and a
// primary writes). A primary of a shard without replicas, without AutoEject, is only
// marked down: false. It panics if n names no server of the pool.
func (p *Pool) ReportFailure(n NodeID) (ejected bool) {
	h := p.health(n)
	if h.failures.Add(1) < p.limit {
		return false
	}
	h.failures.Store(0)
	h.ejectedUntil.Store(p.now() + p.retry)
	if n.Replica == 0 && p.cfg.AutoEject {
		p.mu.Lock()
		p.rebuildLocked()
		p.mu.Unlock()
		return true
	}
	return p.shards[n.Shard].Replicas > 0
}

// ReportSuccess records a success of server n (a reply from it),
// which clears its failure count and brings it back if it was ejected. It is cheap when
// the server has no failures. It panics if n names no server of the pool.
func (p *Pool) ReportSuccess(n NodeID) {
	h := p.health(n)
	if h.failures.Load() == 0 && h.ejectedUntil.Load() == 0 {
		return
	}
	h.failures.Store(0)
	if h.ejectedUntil.Swap(0) != 0 && n.Replica == 0 && p.cfg.AutoEject {
		p.mu.Lock()
		p.rebuildLocked()
		p.mu.Unlock()
	}
}

// PickRead returns the server of shard that serves a read under policy; see ReadPolicy.
// A replica is chosen at random among the live ones. ok is false only for ReadReplica
// when the shard has no live replica. It panics if shard is out of range.
func (p *Pool) PickRead(shard int, policy ReadPolicy) (n NodeID, ok bool) {
	primary := NodeID{Shard: shard}
	switch policy {
	case ReadPreferPrimary:
		if p.Live(primary) {
			return primary, true
		}
		if r, ok := p.liveReplica(shard); ok {
			return r, true
		}
		return primary, true
	case ReadReplica:
		return p.liveReplica(shard)
	case ReadPreferReplica:
		if r, ok := p.liveReplica(shard); ok {
			return r, true
		}
		return primary, true
	default:
		p.health(primary) // range check
		return primary, true
	}
}

// liveReplica returns a live replica of shard chosen at random, if there is one.
func (p *Pool) liveReplica(shard int) (NodeID, bool) {
	n := p.shards[shard].Replicas
	if n == 0 {
		return NodeID{}, false
	}
	start := rand.IntN(n)
	for i := range n {
		id := NodeID{Shard: shard, Replica: 1 + (start+i)%n}
		if p.Live(id) {
			return id, true
		}
	}
	return NodeID{}, false
}
