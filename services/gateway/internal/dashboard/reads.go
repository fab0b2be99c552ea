package dashboard

import (
	"slices"
	"sync"
	"time"

	"github.com/xswtw/xsw/services/gateway/internal/metrics"
)

// BookReads is the book reads (a book's page or chapter list) this gateway answered over
// the last Window, and the share of them that was pre-cached.
type BookReads struct {
	WindowSeconds int `json:"window_seconds"`
	Total         int `json:"total"`
	// ByServedFrom counts the reads by where each was served from: every value of
	// metrics.ServedFrom, zero included.
	ByServedFrom map[string]int `json:"by_served_from"`
	// HitRate is the share of the reads served from memory or the database, from 0 to
	// 1; nil without reads.
	HitRate *float64 `json:"hit_rate"`
}

// readTally counts book reads by where each was served from, per bucket of a sliding
// window.
type readTally struct {
	bucket time.Duration
	n      int // buckets in the window

	mu      sync.Mutex
	buckets map[int64]map[string]int
}

func newReadTally(window, bucket time.Duration) *readTally {
	return &readTally{bucket: bucket, n: int(window / bucket), buckets: map[int64]map[string]int{}}
}

// add counts a read served from from at now; a value outside metrics.ServedFrom is
// ignored. Opening a new bucket forgets those that left the window.
func (r *readTally) add(from string, now time.Time) {
	if !slices.Contains(metrics.ServedFrom, from) {
		return
	}
	i := now.UnixNano() / int64(r.bucket)
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[i]
	if !ok {
		r.forget(i)
		b = map[string]int{}
		r.buckets[i] = b
	}
	b[from]++
}

// forget drops the buckets before the window ending with bucket last. r.mu is held.
func (r *readTally) forget(last int64) {
	for i := range r.buckets {
		if i <= last-int64(r.n) {
			delete(r.buckets, i)
		}
	}
}

// window sums the reads of the window ending with now's bucket.
func (r *readTally) window(now time.Time) BookReads {
	last := now.UnixNano() / int64(r.bucket)
	out := BookReads{WindowSeconds: int(time.Duration(r.n) * r.bucket / time.Second), ByServedFrom: map[string]int{}}
	for _, from := range metrics.ServedFrom {
		out.ByServedFrom[from] = 0
	}
	r.mu.Lock()
	r.forget(last)
	for i, b := range r.buckets {
		if i > last {
			continue // read after now (a clock stepped back)
		}
		for from, n := range b {
			out.ByServedFrom[from] += n
			out.Total += n
		}
	}
	r.mu.Unlock()
	if out.Total > 0 {
		hits := float64(out.ByServedFrom[metrics.ServedMemory]+out.ByServedFrom[metrics.ServedDatabase]) / float64(out.Total)
		out.HitRate = &hits
	}
	return out
}
