package main

import (
	"math"
	"slices"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
)

// Sample is one figure measured over several runs: the median, which the report shows,
// and every run's value, which results.json keeps.
type Sample struct {
	Median float64   `json:"median"`
	Runs   []float64 `json:"runs"`
}

// newSample summarises the values of the runs.
func newSample(runs []float64) Sample {
	return Sample{Median: finite(median(runs)), Runs: slices.Clone(runs)}
}

// lowest and highest are the smallest and the largest value of the runs of s (0 for
// none).
func lowest(s Sample) float64 {
	if len(s.Runs) == 0 {
		return 0
	}
	return slices.Min(s.Runs)
}

func highest(s Sample) float64 {
	if len(s.Runs) == 0 {
		return 0
	}
	return slices.Max(s.Runs)
}

// median returns the middle value of xs (the mean of the two middle values for an even
// count), or NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted, which must
// be in increasing order: the smallest value with at least p% of the values at or below
// it. It is 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Latency summarises the latencies of one load run.
type Latency struct {
	P50, P99, Max time.Duration
}

// summarise sorts lat in place and reads its percentiles.
func summarise(lat []time.Duration) Latency {
	slices.Sort(lat)
	l := Latency{P50: percentile(lat, 50), P99: percentile(lat, 99)}
	if len(lat) > 0 {
		l.Max = lat[len(lat)-1]
	}
	return l
}

// ms converts a duration to milliseconds, for figures.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Spacing describes the arrival times of requests at the site over a measured window.
type Spacing struct {
	// Count is the number of requests in the window.
	Count int
	// PerSecond is Count over the window's length.
	PerSecond float64
	// MinGap is the smallest time between two consecutive requests (0 for fewer than
	// two).
	MinGap time.Duration
	// MaxInInterval is the most requests that arrived within any span shorter than the
	// allowed interval: 1 when the limit held everywhere.
	MaxInInterval int
	// MaxInSecond is the most requests that arrived within any span shorter than a second.
	MaxInSecond int
}

// spacing summarises the requests the site logged over a window of the given length,
// against the allowed interval between requests.
func spacing(reqs []sitesim.Request, window, interval time.Duration) Spacing {
	s := Spacing{
		Count:         len(reqs),
		MaxInInterval: sitesim.MaxInWindow(reqs, interval),
		MaxInSecond:   sitesim.MaxInWindow(reqs, time.Second),
	}
	if window > 0 {
		s.PerSecond = float64(len(reqs)) / window.Seconds()
	}
	s.MinGap, _ = sitesim.MinGap(reqs)
	return s
}
