package sitesim

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Request is one logged request to the site (requests under /_sim/ are not
// logged).
type Request struct {
	// Time is when the request arrived.
	Time       time.Time `json:"time"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Query      string    `json:"query,omitempty"`
	RemoteAddr string    `json:"remote_addr"`
	UserAgent  string    `json:"user_agent,omitempty"`
	// Status is the status sent; 0 while the request is in flight or when the
	// connection was reset.
	Status int `json:"status"`
	// Fault is the kind of the fault injected into the response, if any.
	Fault FaultKind `json:"fault,omitempty"`
	// Duration is how long the response took, latency included.
	Duration time.Duration `json:"duration_ns"`
}

// requestLog records requests. Entries are pointers so that a request in
// flight can fill in its status; readers get copies.
type requestLog struct {
	mu      sync.Mutex
	limit   int
	total   int
	entries []*Request
}

func (l *requestLog) begin(r Request) *Request {
	e := &r
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if len(l.entries) >= l.limit {
		// Drop a quarter at a time, so that a full log costs O(1) per request.
		drop := min(len(l.entries), max(1, l.limit/4, len(l.entries)-l.limit+1))
		l.entries = slices.Delete(l.entries, 0, drop)
	}
	l.entries = append(l.entries, e)
	return e
}

func (l *requestLog) end(e *Request, status int, fault FaultKind, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Status, e.Fault, e.Duration = status, fault, d
}

func (l *requestLog) snapshot(prefix string) []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Request, 0, len(l.entries))
	for _, e := range l.entries {
		if strings.HasPrefix(e.Path, prefix) {
			out = append(out, *e)
		}
	}
	return out
}

// all returns the count and a copy of every entry, read together.
func (l *requestLog) all() (total int, reqs []Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	reqs = make([]Request, len(l.entries))
	for i, e := range l.entries {
		reqs[i] = *e
	}
	return l.total, reqs
}

func (l *requestLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total = 0
	l.entries = nil
}

// MaxInWindow returns the largest number of requests whose arrival times fit
// in one window of the given length (any start time): two requests are in the
// same window when they arrived less than window apart. It is 0 for no
// requests and 1 for a window <= 0.
func MaxInWindow(reqs []Request, window time.Duration) int {
	if len(reqs) == 0 {
		return 0
	}
	if window <= 0 {
		return 1
	}
	times := sortedTimes(reqs)
	best, j := 0, 0
	for i, t := range times {
		for t.Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// MinGap returns the smallest time between the arrivals of two consecutive
// requests; ok is false for fewer than two requests.
func MinGap(reqs []Request) (gap time.Duration, ok bool) {
	if len(reqs) < 2 {
		return 0, false
	}
	times := sortedTimes(reqs)
	gap = times[1].Sub(times[0])
	for i := 2; i < len(times); i++ {
		gap = min(gap, times[i].Sub(times[i-1]))
	}
	return gap, true
}

func sortedTimes(reqs []Request) []time.Time {
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = r.Time
	}
	slices.SortFunc(times, time.Time.Compare)
	return times
}

// Stats summarises the request log.
type Stats struct {
	// Count is the number of requests since the last reset; Logged is how
	// many of them the log still holds.
	Count  int `json:"count"`
	Logged int `json:"logged"`
	// ByStatus counts logged requests by status (0: in flight or reset).
	ByStatus map[int]int `json:"by_status"`
	// ByPage counts logged requests by page type: home, listing, book, toc
	// (m.xsw.tw only), chapter, other.
	ByPage map[string]int `json:"by_page"`
	// ByFault counts logged requests that got a fault, by kind.
	ByFault map[FaultKind]int `json:"by_fault"`
	// Window is the window of MaxInWindow; MaxPerSecond uses one second.
	Window       string `json:"window"`
	MaxInWindow  int    `json:"max_in_window"`
	MaxPerSecond int    `json:"max_per_second"`
	// MinGapMS is MinGap in milliseconds, -1 for fewer than two requests.
	MinGapMS float64   `json:"min_gap_ms"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
}

// computeStats summarises reqs; kindOf tells the page type of a path.
func computeStats(total int, reqs []Request, window time.Duration, kindOf func(string) pageKind) Stats {
	st := Stats{
		Count:        total,
		Logged:       len(reqs),
		ByStatus:     map[int]int{},
		ByPage:       map[string]int{},
		ByFault:      map[FaultKind]int{},
		Window:       window.String(),
		MaxInWindow:  MaxInWindow(reqs, window),
		MaxPerSecond: MaxInWindow(reqs, time.Second),
		MinGapMS:     -1,
	}
	if gap, ok := MinGap(reqs); ok {
		st.MinGapMS = float64(gap) / float64(time.Millisecond)
	}
	for _, r := range reqs {
		st.ByStatus[r.Status]++
		st.ByPage[kindOf(r.Path).String()]++
		if r.Fault != "" {
			st.ByFault[r.Fault]++
		}
		if st.First.IsZero() || r.Time.Before(st.First) {
			st.First = r.Time
		}
		if r.Time.After(st.Last) {
			st.Last = r.Time
		}
	}
	return st
}
