// hist.go holds Hist, the latency histogram every suite records into: fixed
// log-linear buckets (64 per power of two, so a percentile is within 1.6% of
// the true value), cheap to record and to merge across goroutines.

package main

import (
	"math"
	"math/bits"
	"time"
)

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits) * histSub
)

// Hist counts durations in nanoseconds. The zero value is empty and ready;
// a Hist is not safe for concurrent use: give each goroutine its own and
// Merge them.
type Hist struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	msb := bits.Len64(uint64(v)) - 1
	sub := int(v>>(msb-histSubBits)) & (histSub - 1)
	return (msb-histSubBits+1)*histSub + sub
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	lo := int64(histSub+i%histSub) << shift
	return lo + (int64(1)<<shift)/2
}

// Record adds one duration.
func (h *Hist) Record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every sample of o to h.
func (h *Hist) Merge(o *Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Hist) Count() uint64 { return h.n }

// Max returns the largest sample (exact).
func (h *Hist) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the average sample.
func (h *Hist) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (0 < q <= 1), clamped to the exact
// minimum and maximum.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(histValue(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
