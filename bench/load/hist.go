package main

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in the manner of HdrHistogram:
// values below 2^subBits nanoseconds are exact, larger ones fall into
// 2^(subBits-1) buckets per power of two, so every quantile is within 1/64
// (1.6 %) of the true value. Recording is one index computation and one
// increment; each worker owns one and they are merged at the end.
type histogram struct {
	counts [(64 - subBits + 2) << (subBits - 1)]uint64
	n      uint64
	max    int64
}

const subBits = 7 // 64 buckets per power of two

func bucketOf(v int64) int {
	if v < 1<<subBits {
		if v < 0 {
			v = 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // ≥ 1
	return (shift << (subBits - 1)) + int(uint64(v)>>shift)
}

// valueOf is the middle of bucket i.
func valueOf(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	shift := i>>(subBits-1) - 1
	sub := int64(i - shift<<(subBits-1))
	lo := sub << shift
	return lo + (int64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0 < q ≤ 1).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(valueOf(i), h.max))
		}
	}
	return time.Duration(h.max)
}
