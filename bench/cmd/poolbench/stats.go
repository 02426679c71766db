package main

import (
	"math"
	"slices"
)

// MedianSpread returns the median of xs (the mean of the middle two for an even count)
// and its range; has is false for no values.
func MedianSpread(xs []float64) (median float64, spread Range, has bool) {
	if len(xs) == 0 {
		return 0, Range{}, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		median = s[n/2]
	} else {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, Range{Min: s[0], Max: s[n-1]}, true
}

// Percentile returns the q-th percentile (0 < q <= 100) of sorted by nearest rank: the
// smallest value with at least q percent of the values at or below it. It returns 0
// for no values.
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted))/100 - 1e-9)) // 99.9% of 1000 is rank 999, not 1000
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// CDFPoint is one point of a latency distribution: Pct percent of requests took at most
// Value.
type CDFPoint struct {
	Pct   float64
	Value float64
}

// PercentileCDF returns the q-th percentile of a distribution given as points sorted by
// Pct, interpolating linearly between the two points around q (redis-benchmark prints
// its distribution this way). ok is false without points.
func PercentileCDF(points []CDFPoint, q float64) (v float64, ok bool) {
	if len(points) == 0 {
		return 0, false
	}
	if q <= points[0].Pct {
		return points[0].Value, true
	}
	for i := 1; i < len(points); i++ {
		hi := points[i]
		if hi.Pct < q {
			continue
		}
		lo := points[i-1]
		if hi.Pct == lo.Pct {
			return hi.Value, true
		}
		return lo.Value + (hi.Value-lo.Value)*(q-lo.Pct)/(hi.Pct-lo.Pct), true
	}
	return points[len(points)-1].Value, true
}

// DirectTarget is the target without a proxy.
const DirectTarget = "direct"

// ComputeRatios sets every result's ratios against the best peer in its scenario:
// throughput over the highest peer throughput, p99 over the lowest peer p99. The peers
// of a proxy are the other proxies; the peers of direct are all the proxies.
func ComputeRatios(rs []Result) {
	for i := range rs {
		r := &rs[i]
		r.ThroughputRatio, r.ThroughputPeer, r.P99Ratio, r.P99Peer = nil, "", nil, ""
		var bestTP, bestP99 *Result
		for j := range rs {
			p := &rs[j]
			if j == i || p.Scenario != r.Scenario || p.Target == DirectTarget || p.Rounds == 0 {
				continue
			}
			if p.Throughput > 0 && (bestTP == nil || p.Throughput > bestTP.Throughput) {
				bestTP = p
			}
			if p.P99Ms != nil && *p.P99Ms > 0 && (bestP99 == nil || *p.P99Ms < *bestP99.P99Ms) {
				bestP99 = p
			}
		}
		if bestTP != nil && r.Throughput > 0 {
			v := r.Throughput / bestTP.Throughput
			r.ThroughputRatio, r.ThroughputPeer = &v, bestTP.Target
		}
		if bestP99 != nil && r.P99Ms != nil {
			v := *r.P99Ms / *bestP99.P99Ms
			r.P99Ratio, r.P99Peer = &v, bestP99.Target
		}
	}
}
