package consume_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// TestShrinkAccepted: a book of 312 chapters whose site now lists 40 is refused and
// dead-lettered; an operator's acceptance, travelling with the fetched events, is
// decoded, recorded and acknowledged, and the sync that follows applies (40 chapters,
// the book's mark 40, recorded completed, no dead letter). The acceptance delivered
// again changes nothing: a later sync listing 10 is refused and dead-lettered. An
// acceptance of a book not stored is acknowledged and writes nothing.
func TestShrinkAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	c := e.run(t, fastOptions)
	bk := newBook7(t, e)
	chapters, job, dead := bk.chapters, bk.job, bk.dead
	lastDead := func() string {
		msg, err := dead.GetLastMsgForSubject(t.Context(), events.SubjectDead(xsw, "7"))
		if err != nil {
			t.Fatalf("dead letter of book 7: %v", err)
		}
		return msg.Header.Get(jetstream.MsgIDHeader)
	}
	settled := func() {
		testkit.Eventually(t, 15*time.Second, "every event settled", func() bool { return e.pending(t) == 0 })
	}

	e.publishAll(t, syncOfN(xsw, "7", "xsw.7-1", 312, t0))
	testkit.Eventually(t, 15*time.Second, "the 312 chapters stored", job("xsw.7-1"))
	e.publishAll(t, syncOfN(xsw, "7", "xsw.7-2", 40, t0.Add(time.Hour)))
	testkit.Eventually(t, 15*time.Second, "job xsw.7-2 recorded", job("xsw.7-2"))
	settled()
	if j, _ := e.store.Job(t.Context(), "xsw.7-2"); j.Status != "failed" || chapters() != 312 || lastDead() != "dead:xsw.7-2" {
		t.Fatalf("setup: job xsw.7-2 %s, %d chapters, dead letter %s; want refused", j.Status, chapters(), lastDead())
	}

	// What the gateway publishes: the acceptance, then a forced sync.
	accept := events.NewBookShrinkAccepted(xsw, "7", "admin", t0.Add(90*time.Minute))
	e.publish(t, accept.Subject(), &accept)
	e.publishAll(t, syncOfN(xsw, "7", "xsw.7-3", 40, t0.Add(2*time.Hour)))
	testkit.Eventually(t, 15*time.Second, "job xsw.7-3 recorded", job("xsw.7-3"))
	settled()
	if j, err := e.store.Job(t.Context(), "xsw.7-3"); err != nil || j.Status != "completed" || j.Dead {
		t.Errorf("the accepted sync: job %+v, %v; want completed", j, err)
	}
	b, err := e.store.Book(t.Context(), xsw, "7")
	if err != nil {
		t.Fatal(err)
	}
	if n := chapters(); n != 40 || *b.ChapterTotal != 40 || *b.ChapterPeak != 40 || b.ShrinkAccepted {
		t.Errorf("after the accepted sync: %d chapters, chapter_total %d, chapter_peak %d, acceptance pending %v; want 40, 40, 40, used up",
			n, *b.ChapterTotal, *b.ChapterPeak, b.ShrinkAccepted)
	}
	if id := lastDead(); id != "dead:xsw.7-2" {
		t.Errorf("dead letter %s after the accepted sync, want xsw.7-2's still", id)
	}

	// The acceptance delivered again, then a sync listing 10: refused.
	e.publish(t, accept.Subject(), &accept)
	e.publishAll(t, syncOfN(xsw, "7", "xsw.7-4", 10, t0.Add(3*time.Hour)))
	testkit.Eventually(t, 15*time.Second, "job xsw.7-4 recorded", job("xsw.7-4"))
	settled()
	if j, _ := e.store.Job(t.Context(), "xsw.7-4"); j.Status != "failed" || !j.Dead || chapters() != 40 || lastDead() != "dead:xsw.7-4" {
		t.Errorf("a sync listing 10 after the acceptance delivered again: job %s dead %v, %d chapters, dead letter %s; want refused, 40 kept",
			j.Status, j.Dead, chapters(), lastDead())
	}

	// A book not stored: nothing to accept.
	other := events.NewBookShrinkAccepted(xsw, "8", "admin", t0.Add(4*time.Hour))
	e.publish(t, other.Subject(), &other)
	settled()
	if _, err := e.store.Book(t.Context(), xsw, "8"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("book 8 after its acceptance: %v, want not found", err)
	}
	if st := c.Stats(); st.Refused != 2 || st.Poison != 0 || st.Failures != 0 {
		t.Errorf("stats %+v, want 2 refused, no poison or failure", st)
	}
}
