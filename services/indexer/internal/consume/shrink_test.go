package consume_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// syncOfN is what a fetcher publishes for sync job of book id listing n chapters on
// pages of 50 (one empty page when n is 0), at.
func syncOfN(site, id, job string, n int, at time.Time) []published {
	pages := max((n+49)/50, 1)
	meta := bookEvent(site, id, at)
	meta.JobID = job
	out := []published{{events.SubjectFetchedBook(site, id), meta}}
	for p := 1; p <= pages; p++ {
		toc := tocEvent(site, id, p, pages, (p-1)*50+1, min(p*50, n), at.Add(time.Duration(p)*time.Millisecond))
		toc.JobID = job
		out = append(out, published{events.SubjectFetchedTOC(site, id), toc})
	}
	done := jobEvent(site, events.JobCompleted, id, at.Add(time.Second))
	done.JobID, done.Chapters, done.TOCPages, done.Lane, done.Priority = job, n, pages, events.LaneRefresh, 3
	done.EnqueuedAt = at.Add(-time.Minute)
	return append(out, published{done.Subject(), done})
}

// TestShrinkDeadLettered: a book of 312 chapters is synced again, and the site lists
// none of them, then 10: both syncs are refused (the 312 chapters stay), recorded as
// failed jobs with the reason and dead-lettered where the gateway lists and replays dead
// jobs. A sync listing 310 applies.
func TestShrinkDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.run(t, fastOptions)
	bk := newBook7(t, e)
	chapters, job, dead := bk.chapters, bk.job, bk.dead

	e.publishAll(t, syncOfN(xsw, "7", "xsw.7-1", 312, t0))
	testkit.Eventually(t, 15*time.Second, "the 312 chapters stored", job("xsw.7-1"))
	if n := chapters(); n != 312 {
		t.Fatalf("%d chapters stored, want 312", n)
	}

	for k, listed := range []int{0, 10} {
		id := fmt.Sprintf("xsw.7-%d", k+2)
		e.publishAll(t, syncOfN(xsw, "7", id, listed, t0.Add(time.Duration(k+1)*time.Hour)))
		testkit.Eventually(t, 15*time.Second, "job "+id+" recorded", job(id))
		testkit.Eventually(t, 15*time.Second, "every event settled", func() bool { return e.pending(t) == 0 })
		if n := chapters(); n != 312 {
			t.Errorf("a sync listing %d chapters left %d of the 312", listed, n)
		}
		reason := fmt.Sprintf("shrink refused: the site listed %d chapters, 312 stored", listed)
		j, err := e.store.Job(t.Context(), id)
		if err != nil || j.Status != "failed" || j.Error != reason || !j.Dead {
			t.Errorf("job %s: %+v, %v; want failed, dead, %q", id, j, err, reason)
		}
		msg, err := dead.GetLastMsgForSubject(t.Context(), events.SubjectDead(xsw, "7"))
		if err != nil {
			t.Fatalf("dead letter of job %s: %v", id, err)
		}
		var dl events.DeadLetter
		if err := events.Decode(msg.Data, &dl); err != nil {
			t.Fatal(err)
		}
		if dl.JobID != id || dl.Error != reason || dl.Request.Site != xsw || dl.Request.BookID != "7" ||
			dl.Request.Lane != events.LaneRefresh || dl.Request.Priority != 3 || dl.Attempts != 1 {
			t.Errorf("dead letter %+v, want job %s's, %q, its lane and priority", dl, id, reason)
		}
		if msg.Header.Get(jetstream.MsgIDHeader) != "dead:"+id {
			t.Errorf("dead letter message id %q", msg.Header.Get(jetstream.MsgIDHeader))
		}
	}
	if b, err := e.store.Book(t.Context(), xsw, "7"); err != nil || *b.ChapterTotal != 312 || *b.SyncJobID != "xsw.7-1" {
		t.Errorf("book after the refused syncs: %+v, %v", b, err)
	}

	e.publishAll(t, syncOfN(xsw, "7", "xsw.7-4", 310, t0.Add(3*time.Hour)))
	testkit.Eventually(t, 15*time.Second, "job xsw.7-4 recorded", job("xsw.7-4"))
	if j, _ := e.store.Job(t.Context(), "xsw.7-4"); j.Status != "completed" {
		t.Errorf("a sync listing 310 of 312: job %s, want completed", j.Status)
	}
	if n := chapters(); n != 310 {
		t.Errorf("%d chapters after a sync listing 310, want 310", n)
	}
	if msg, err := dead.GetLastMsgForSubject(t.Context(), events.SubjectDead(xsw, "7")); err != nil || msg.Header.Get(jetstream.MsgIDHeader) != "dead:xsw.7-3" {
		t.Errorf("dead letter after the applied sync: %v, %v; want job xsw.7-3's still", msg, err)
	}
	testkit.Eventually(t, 15*time.Second, "every event settled", func() bool { return e.pending(t) == 0 })
	if st := c.Stats(); st.Refused != 2 || st.Poison != 0 || st.Failures != 0 {
		t.Errorf("stats %+v, want 2 refused, no poison or failure", st)
	}
	if _, err := dead.GetLastMsgForSubject(t.Context(), events.SubjectDead(xsw, "8")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("dead letter of another book: %v", err)
	}
}

// book7 reads what the indexer made of xsw book 7 in e: its chapters, whether a job is
// recorded, and the dead-letter stream.
type book7 struct {
	t    *testing.T
	e    *env
	dead jetstream.Stream
}

func newBook7(t *testing.T, e *env) book7 {
	t.Helper()
	dead, err := e.ns.JS.Stream(t.Context(), events.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	return book7{t: t, e: e, dead: dead}
}

// chapters counts the book's stored chapters.
func (b book7) chapters() int {
	cs, err := b.e.store.Chapters(b.t.Context(), xsw, "7")
	if err != nil {
		b.t.Fatal(err)
	}
	return len(cs)
}

// job reports, for testkit.Eventually, whether job id is recorded with a status.
func (b book7) job(id string) func() bool {
	return func() bool {
		j, err := b.e.store.Job(b.t.Context(), id)
		return err == nil && j.Status != ""
	}
}
