package pgpool

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/poolsuite/poolsuite/internal/pgpool/admin"
)

// histBounds are the upper bounds, in seconds, of the buckets of pgpool's duration
// histograms: from 100 µs (a query on a warm connection) to a minute.
var histBounds = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// histogram counts durations in histBounds' buckets, lock-free; the last count is
// of those above every bound. The zero value is ready to use.
type histogram struct {
	counts [len(histBounds) + 1]atomic.Uint64
	sumUS  atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	h.counts[sort.SearchFloat64s(histBounds[:], d.Seconds())].Add(1)
	h.sumUS.Add(d.Microseconds())
}

// snapshot copies the counts; the total is their sum, so the buckets always add up.
func (h *histogram) snapshot() admin.Histogram {
	out := admin.Histogram{Bounds: histBounds[:], Counts: make([]uint64, len(histBounds)), SumUS: h.sumUS.Load()}
	for i := range h.counts {
		n := h.counts[i].Load()
		if i < len(out.Counts) {
			out.Counts[i] = n
		}
		out.Count += n
	}
	return out
}
