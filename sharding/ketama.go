package sharding

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
)

const (
	// ketamaPointsPerServer is the number of points of a server of average weight.
	ketamaPointsPerServer = 160
	// ketamaPointsPerHash is the number of points taken from one md5 digest.
	ketamaPointsPerHash = 4
	// ketamaMaxNameLen is how much of "name-k" twemproxy hashes (its 273-byte buffer
	// less the terminating NUL).
	ketamaMaxNameLen = 272
)

// ketamaPoints returns how many points a live server of the given weight gets, computed
// in float32 exactly as twemproxy does (in C, with float operands and one double
// addition). Every intermediate is converted to float32 explicitly so that the compiler
// cannot fuse operations and change the rounding. With equal weights this gives 156
// points instead of 160 for some server counts (25, 50, 100, ...).
func ketamaPoints(weight uint32, totalWeight uint64, nlive int) uint32 {
	pct := float32(float32(weight) / float32(totalWeight))
	x := float32(pct * ketamaPointsPerServer)
	x = float32(x / ketamaPointsPerHash)
	x = float32(x * float32(nlive))
	x = float32(float64(x) + 0.0000000001)
	x = float32(math.Floor(float64(x)))
	return uint32(float32(x * ketamaPointsPerHash))
}

// ketamaPointName appends to dst the string twemproxy hashes for a server's k-th group
// of points: "name-k", cut to ketamaMaxNameLen bytes.
func ketamaPointName(dst []byte, name string, k uint32) []byte {
	dst = append(dst, name...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, uint64(k), 10)
	if len(dst) > ketamaMaxNameLen {
		dst = dst[:ketamaMaxNameLen]
	}
	return dst
}

// ketamaPoint returns the alignment-th point (0-3) of an md5 digest: its bytes
// 4*alignment to 4*alignment+3, little-endian.
func ketamaPoint(digest *[md5.Size]byte, alignment int) uint32 {
	return binary.LittleEndian.Uint32(digest[4*alignment:])
}

// ketamaContinuum builds the continuum of the live servers (indices into servers, in
// twemproxy's server order) with totalWeight the sum of their weights: point values
// sorted ascending, and the owner of each point. Equal values keep server order.
func ketamaContinuum(servers []Shard, live []int32, totalWeight uint64) ([]uint32, []int32) {
	type point struct {
		value uint32
		owner int32
	}
	var pts []point
	var buf []byte
	for _, idx := range live {
		s := servers[idx]
		n := ketamaPoints(s.Weight, totalWeight, len(live))
		for k := uint32(0); k < n/ketamaPointsPerHash; k++ {
			buf = ketamaPointName(buf[:0], s.Name, k)
			d := md5.Sum(buf)
			for a := range ketamaPointsPerHash {
				pts = append(pts, point{ketamaPoint(&d, a), idx})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int {
		switch {
		case a.value < b.value:
			return -1
		case a.value > b.value:
			return 1
		}
		return 0
	})
	values := make([]uint32, len(pts))
	owners := make([]int32, len(pts))
	for i, p := range pts {
		values[i], owners[i] = p.value, p.owner
	}
	return values, owners
}

// ketamaSearch returns the index of the first point >= hash, wrapping to 0 past the last
// point. points must not be empty.
func ketamaSearch(points []uint32, hash uint32) int {
	lo, hi := 0, len(points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if points[mid] < hash {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(points) {
		return 0
	}
	return lo
}
