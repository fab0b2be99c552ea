package dashboard

import (
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
)

// Kinds of activity besides the job event kinds.
const (
	// KindQueued: a book request was published.
	KindQueued = "queued"
)

// Activity is one step in a book's sync as the page shows it and the event stream
// carries it (api.Activity).
type Activity = api.Activity

func activityOfJob(e events.JobEvent) Activity {
	a := Activity{
		Kind: string(e.Kind), Site: e.Site, BookID: e.BookID, JobID: e.JobID, Lane: e.Lane, Priority: e.Priority, Attempt: e.Attempt,
		Fetcher: e.Fetcher, At: e.At.UTC(), Chapters: e.Chapters, TOCPages: e.TOCPages, Unchanged: e.Unchanged,
		Error: e.Error, Permanent: e.Permanent, Reason: e.Reason,
	}
	if e.Kind != events.JobStarted && !e.StartedAt.IsZero() && e.At.After(e.StartedAt) {
		a.Took = e.At.Sub(e.StartedAt).Seconds()
	}
	return a
}

func activityOfRequest(r events.BookRequested) Activity {
	return Activity{Kind: KindQueued, Site: r.Site, BookID: r.BookID, Lane: r.Lane, Priority: r.Priority, At: r.RequestedAt.UTC(),
		Reason: r.Reason, Force: r.Force}
}

// Throughput is the jobs that ended in each bucket of the last minutes, oldest first.
type Throughput struct {
	BucketSeconds int `json:"bucket_seconds"`
	// End is the end of the last bucket.
	End       time.Time `json:"end"`
	Completed []int     `json:"completed"`
	Failed    []int     `json:"failed"`
}

// counts tallies completed and failed jobs per bucket of a sliding window.
type counts struct {
	bucket    time.Duration
	n         int // buckets in the window
	completed map[int64]int
	failed    map[int64]int
}

func newCounts(window, bucket time.Duration) *counts {
	return &counts{bucket: bucket, n: int(window / bucket), completed: map[int64]int{}, failed: map[int64]int{}}
}

func (c *counts) index(t time.Time) int64 { return t.UnixNano() / int64(c.bucket) }

// add counts a job that ended at t (completed or failed for good); others are ignored.
func (c *counts) add(kind string, t time.Time, now time.Time) {
	i := c.index(t)
	if i <= c.index(now)-int64(c.n) {
		return // older than the window
	}
	switch events.JobKind(kind) {
	case events.JobCompleted:
		c.completed[i]++
	case events.JobFailed:
		c.failed[i]++
	}
}

// window returns the counts of the window ending with now's bucket, and forgets older
// buckets.
func (c *counts) window(now time.Time) Throughput {
	last := c.index(now)
	first := last - int64(c.n) + 1
	out := Throughput{BucketSeconds: int(c.bucket / time.Second), End: time.Unix(0, (last+1)*int64(c.bucket)).UTC(),
		Completed: make([]int, c.n), Failed: make([]int, c.n)}
	for _, m := range []map[int64]int{c.completed, c.failed} {
		for i := range m {
			if i < first {
				delete(m, i)
			}
		}
	}
	for i := first; i <= last; i++ {
		out.Completed[i-first] = c.completed[i]
		out.Failed[i-first] = c.failed[i]
	}
	return out
}
