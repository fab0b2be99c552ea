package consume_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
)

// announcements collects the BookIndexed messages sub receives until none comes for a
// while, keyed by subject.
func announcements(t *testing.T, sub *nats.Subscription) map[string][]*nats.Msg {
	t.Helper()
	out := map[string][]*nats.Msg{}
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return out
		}
		out[m.Subject] = append(out[m.Subject], m)
	}
}

func lastIndexed(t *testing.T, msgs []*nats.Msg) events.BookIndexed {
	t.Helper()
	var ev events.BookIndexed
	if len(msgs) == 0 {
		t.Fatal("no announcement")
	}
	if err := events.Decode(msgs[len(msgs)-1].Data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestTwoSitesOneBookID syncs two sites' books of one id at the same time: each is
// indexed as its own book and announced on its own subject, under message ids of its
// own, and a purge of one leaves the other alone.
func TestTwoSitesOneBookID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	sub, err := e.ns.Conn.SubscribeSync(events.SubjectIndexedAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	xswSync, czSync := syncOf(xsw, "7", t0), syncOf("czbooks", "7", t0)
	czSync[1].payload.(*events.BookFetched).Book.Name = "另一站的書"
	for i := range xswSync {
		e.publishAll(t, []published{xswSync[i], czSync[i]})
	}
	for _, site := range []string{xsw, "czbooks"} {
		e.publish(t, events.SubjectFetchedChapter(site, "7"), &events.ChapterFetched{
			Header: events.Header{Version: events.Version}, Site: site, BookID: "7", Number: 3, ChapterID: "1003",
			Title: "第3章", URL: "u/1003", Text: "正文 of " + site, FetchedAt: t0.Add(time.Minute),
		})
	}
	c := e.run(t, fastOptions)
	testkit.Eventually(t, 15*time.Second, "both books complete", func() bool { return e.complete(xsw, "7")() && e.complete("czbooks", "7")() })
	testkit.Eventually(t, 15*time.Second, "every event acknowledged", func() bool { return e.pending(t) == 0 })

	for site, name := range map[string]string{xsw: "書7", "czbooks": "另一站的書"} {
		b, err := e.store.Book(t.Context(), site, "7")
		if err != nil || b.Site != site || b.Name != name {
			t.Errorf("%s book: %+v, %v", site, b, err)
		}
		chs, err := e.store.Chapters(t.Context(), site, "7")
		if err != nil || len(chs) != 20 || chs[2].Text == nil || *chs[2].Text != "正文 of "+site {
			t.Errorf("%s chapters: %d, %v", site, len(chs), err)
		}
		if j, err := e.store.Job(t.Context(), site+".7-1"); err != nil || j.Site != site || j.Status != "completed" {
			t.Errorf("%s job: %+v, %v", site, j, err)
		}
	}
	got := announcements(t, sub)
	if len(got) != 2 {
		t.Errorf("announcements on %d subjects, want 2: %v", len(got), got)
	}
	for _, site := range []string{xsw, "czbooks"} {
		subject := events.SubjectIndexed(site, "7")
		ev := lastIndexed(t, got[subject])
		if ev.Site != site || ev.BookID != "7" || !ev.Complete || ev.Chapters != 20 {
			t.Errorf("last announcement on %s: %+v", subject, ev)
		}
		for _, m := range got[subject] {
			if id := m.Header.Get(events.HeaderMsgID); !strings.HasPrefix(id, "indexed:"+site+".7:") {
				t.Errorf("announcement on %s under msg id %q", subject, id)
			}
		}
	}

	purge := events.NewBookPurgeRequested("czbooks", "7", "admin", t0.Add(time.Hour))
	e.publish(t, purge.Subject(), &purge)
	testkit.Eventually(t, 15*time.Second, "the purge acknowledged", func() bool { return e.pending(t) == 0 })
	got = announcements(t, sub)
	if len(got) != 1 || len(got[events.SubjectIndexed("czbooks", "7")]) != 1 {
		t.Errorf("after the purge of czbooks 7: announcements %v, want one on its subject", got)
	}
	if chs, err := e.store.Chapters(t.Context(), xsw, "7"); err != nil || chs[2].Text == nil {
		t.Errorf("the purge of czbooks 7 purged xsw 7: %v", err)
	}
	if chs, err := e.store.Chapters(t.Context(), "czbooks", "7"); err != nil || chs[2].Text != nil {
		t.Errorf("czbooks 7 kept its text after its purge: %v", err)
	}
	if st := c.Stats(); st.Poison != 0 || st.Failures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestLegacyStream indexes what a build before the sites left in the stream: version 1
// payloads on subjects with a bare book id. They are xsw's books, announced as such.
func TestLegacyStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	sub, err := e.ns.Conn.SubscribeSync(events.SubjectIndexedAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	const refs = `{"number":1,"chapter_id":"1001","title":"t","url":"u"},{"number":2,"chapter_id":"1002","title":"t","url":"u"},` +
		`{"number":3,"chapter_id":"1003","title":"t","url":"u"}`
	for _, m := range []struct{ subject, data string }{
		{"xsw.job.started.7", `{"version":1,"kind":"started","job_id":"7-1","book_id":"7","lane":"prefetch","at":"2026-01-21T12:00:00Z"}`},
		{"xsw.fetched.book.7", `{"version":1,"job_id":"7-1","book_id":"7","book":{"name":"舊書","last_chapter_id":"1003"},"fetched_at":"2026-01-21T12:00:00Z"}`},
		{"xsw.fetched.toc.7", `{"version":1,"job_id":"7-1","book_id":"7","page":1,"total_pages":1,"chapters":[` + refs + `],"fetched_at":"2026-01-21T12:00:00Z"}`},
		{"xsw.job.completed.7", `{"version":1,"kind":"completed","job_id":"7-1","book_id":"7","lane":"prefetch","attempt":1,"at":"2026-01-21T12:01:00Z","chapters":3,"toc_pages":1}`},
		{"xsw.fetched.chapter.7", `{"version":1,"book_id":"7","number":2,"chapter_id":"1002","title":"t","url":"u","text":"舊正文","fetched_at":"2026-01-21T12:02:00Z"}`},
		{"xsw.fetched.categories", `{"version":1,"categories":[{"id":3,"name":"都市","url":"u/3"},{"id":1,"name":"玄幻","url":"u/1"}],"fetched_at":"2026-01-21T12:00:00Z"}`},
		{"xsw.cmd.reads", `{"version":1,"batch_id":"g-1","reads":{"7":4},"at":"2026-01-21T12:03:00Z"}`},
	} {
		e.publishRaw(t, m.subject, []byte(m.data))
	}
	c := e.run(t, fastOptions)
	testkit.Eventually(t, 15*time.Second, "book 7 complete", e.complete(xsw, "7"))
	testkit.Eventually(t, 15*time.Second, "every event acknowledged", func() bool { return e.pending(t) == 0 })
	if st := c.Stats(); st.Poison != 0 || st.Acked != 7 {
		t.Errorf("stats %+v, want 7 acked", st)
	}
	b, err := e.store.Book(t.Context(), xsw, "7")
	if err != nil || b.Name != "舊書" || b.LastChapterNum == nil || *b.LastChapterNum != 3 {
		t.Errorf("book: %+v, %v", b, err)
	}
	if chs, err := e.store.Chapters(t.Context(), xsw, "7"); err != nil || len(chs) != 3 || chs[1].Text == nil || *chs[1].Text != "舊正文" {
		t.Errorf("chapters: %+v, %v", chs, err)
	}
	if j, err := e.store.Job(t.Context(), "7-1"); err != nil || j.Site != xsw {
		t.Errorf("job: %+v, %v", j, err)
	}
	if cs, err := e.store.Categories(t.Context(), xsw); err != nil || len(cs) != 2 || cs[0].ID != "3" || cs[1].ID != "1" {
		t.Errorf("categories: %+v, %v", cs, err)
	}
	var reads int64
	if err := e.pool.QueryRow(t.Context(), `SELECT read_count FROM books WHERE site = 'xsw' AND id = '7'`).Scan(&reads); err != nil || reads != 4 {
		t.Errorf("read count %d, %v; want 4", reads, err)
	}
	got := announcements(t, sub)
	if ev := lastIndexed(t, got[events.SubjectIndexed(xsw, "7")]); len(got) != 1 || ev.Site != xsw || !ev.Complete {
		t.Errorf("announcements %v, last %+v; want xsw 7's alone", got, ev)
	}
}
