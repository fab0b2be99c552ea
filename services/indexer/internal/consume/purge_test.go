package consume_test

import (
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// TestPurge checks that a purge command travelling with the fetched events clears the
// book's texts, is acknowledged, and is announced so that gateways drop their copies.
func TestPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	sub, err := e.ns.Conn.SubscribeSync(events.SubjectIndexed(xsw, "7"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	c := e.run(t, fastOptions)
	e.publishAll(t, syncOf(xsw, "7", t0))
	e.publish(t, events.SubjectFetchedChapter(xsw, "7"), &events.ChapterFetched{
		Header: events.Header{Version: events.Version}, Site: xsw, BookID: "7", Number: 3, ChapterID: "1003",
		Title: "第3章", URL: "u/1003", Text: "正文", FetchedAt: t0.Add(time.Minute),
	})
	testkit.Eventually(t, 15*time.Second, "every event acknowledged", func() bool { return e.pending(t) == 0 })
	for {
		if _, err := sub.NextMsg(100 * time.Millisecond); err != nil {
			break // drained the announcements of the sync
		}
	}

	purge := events.NewBookPurgeRequested(xsw, "7", "admin", t0.Add(time.Hour))
	e.publish(t, purge.Subject(), &purge)
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no announcement after the purge: %v", err)
	}
	var ev events.BookIndexed
	if err := events.Decode(m.Data, &ev); err != nil || ev.BookID != "7" || ev.Chapters != 20 {
		t.Errorf("announcement %+v, %v", ev, err)
	}
	testkit.Eventually(t, 15*time.Second, "the purge acknowledged", func() bool { return e.pending(t) == 0 })
	chs, err := e.store.Chapters(t.Context(), xsw, "7")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		if ch.Text != nil {
			t.Errorf("chapter %d kept its text", ch.Num)
		}
	}
	if st := c.Stats(); st.Poison != 0 {
		t.Errorf("stats %+v: the purge was terminated", st)
	}
}
