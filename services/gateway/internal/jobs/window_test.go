package jobs_test

import (
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

// TestRepeatsInOnePeriodAreOneRequest shows the request-id window as readers and admins
// meet it: requests of one book, lane and force flag made in one period of
// events.DuplicateWindow (periods start at whole multiples of it) share a message id, so
// a repeat is dropped and answered "already queued" even when the first request has been
// taken since and nothing waits; a repeat made in the next period is queued, however
// soon after the first.
func TestRepeatsInOnePeriodAreOneRequest(t *testing.T) {
	for _, r := range []jobs.Request{
		{Site: site, BookID: book, Lane: events.LaneInteractive, Reason: "book read"},
		manual(true),
	} {
		t.Run(string(r.Lane), func(t *testing.T) {
			m, ns := newManager(t)
			start := time.Now().Truncate(events.DuplicateWindow)
			now := start
			jobs.SetClock(m, func() time.Time { return now })
			request(t, m, r, jobs.Queued)
			// The fetchers took the request and the sync ended without completing (or,
			// forced, completed): nothing waits.
			s, err := ns.JS.Stream(t.Context(), events.StreamRequests)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Purge(t.Context()); err != nil {
				t.Fatal(err)
			}
			now = start.Add(events.DuplicateWindow - time.Second)
			request(t, m, r, jobs.AlreadyQueued)
			if got := streamMsgs(t, ns); got != 0 {
				t.Fatalf("%d requests stored for a repeat in the same period, want it dropped", got)
			}
			now = start.Add(events.DuplicateWindow)
			request(t, m, r, jobs.Queued)
			if got := waitingRequests(t, ns, book); len(got) != 1 {
				t.Errorf("book waits in %d lanes after a repeat in the next period, want 1", len(got))
			}
		})
	}
}
