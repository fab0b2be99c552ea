package main

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/xswtw/xsw/dev/sitesim"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{9, 1, 5}, 5},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"repeated", []float64{2, 2, 9}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			if got := median(tt.in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if diff := cmp.Diff(in, tt.in); diff != "" {
				t.Errorf("median changed its input (-before +after):\n%s", diff)
			}
		})
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
	if s := newSample(nil); s.Median != 0 {
		t.Errorf("newSample(nil).Median = %v, want 0 (JSON cannot hold NaN)", s.Median)
	}
}

func TestPercentile(t *testing.T) {
	// 1..100 ms: the nearest-rank p-th percentile is p ms.
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"none", nil, 99, 0},
		{"one value is every percentile", []time.Duration{5}, 1, 5},
		{"p50 of 100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the min", hundred, 0.001, time.Millisecond},
		{"p99 of 10 rounds up to the max", hundred[:10], 99, 10 * time.Millisecond},
		{"p50 of 4 is the 2nd", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p51 of 4 is the 3rd", []time.Duration{1, 2, 3, 4}, 51, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarise(t *testing.T) {
	lat := []time.Duration{9, 1, 8, 2, 7, 3, 6, 4, 5, 10}
	got := summarise(lat)
	want := Latency{P50: 5, P99: 10, Max: 10}
	if got != want {
		t.Errorf("summarise = %+v, want %+v", got, want)
	}
}

func TestSpacing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(offsets ...time.Duration) []sitesim.Request {
		var out []sitesim.Request
		for _, o := range offsets {
			out = append(out, sitesim.Request{Time: t0.Add(o)})
		}
		return out
	}
	ms := time.Millisecond
	tests := []struct {
		name     string
		reqs     []sitesim.Request
		window   time.Duration
		interval time.Duration
		want     Spacing
	}{
		{
			name: "none", window: time.Second, interval: 100 * ms,
			want: Spacing{},
		},
		{
			name: "evenly spaced at the limit", reqs: at(0, 100*ms, 200*ms, 300*ms, 400*ms), window: 500 * ms, interval: 100 * ms,
			// Requests exactly one interval apart are not in the same interval.
			want: Spacing{Count: 5, PerSecond: 10, MinGap: 100 * ms, MaxInInterval: 1, MaxInSecond: 5},
		},
		{
			name: "two too close, out of order", reqs: at(300*ms, 0, 150*ms, 160*ms), window: time.Second, interval: 100 * ms,
			want: Spacing{Count: 4, PerSecond: 4, MinGap: 10 * ms, MaxInInterval: 2, MaxInSecond: 4},
		},
		{
			name: "a burst inside one second", reqs: at(0, 999*ms, 1000*ms, 1001*ms, 2500*ms), window: 3 * time.Second, interval: 500 * ms,
			want: Spacing{Count: 5, PerSecond: 5.0 / 3, MinGap: ms, MaxInInterval: 3, MaxInSecond: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spacing(tt.reqs, tt.window, tt.interval)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
				t.Errorf("spacing (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChunk(t *testing.T) {
	got := chunk([]string{"a", "b", "c", "d", "e"}, 2)
	want := [][]string{{"a", "b"}, {"c", "d"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chunk (-want +got):\n%s", diff)
	}
}
