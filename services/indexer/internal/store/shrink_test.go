package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// The stored book of the shrink tests: 312 chapters on 7 pages of 50 (the last holds
// 12), chapter ids 1000+number, the texts of chapters 1, 2 and 312 stored.
const (
	storedChapters = 312
	storedPages    = 7
	perPage        = 50
)

// storeBook312 syncs book 7 with 312 chapters (job j1), as a paginated site publishes it.
func storeBook312(t *testing.T, s *store.Store) {
	t.Helper()
	evs := []events.Payload{bookEvent("7", "書", t0)}
	for p := 1; p <= storedPages; p++ {
		evs = append(evs, tocEvent("7", p, storedPages, refs((p-1)*perPage+1, min(p*perPage, storedChapters), 1000), t0))
	}
	evs = append(evs, completed("j1", "7", storedChapters, storedPages, t0.Add(time.Minute)))
	for n, text := range map[int]string{1: "正文一", 2: "正文二", 312: "正文終"} {
		e := chapterEvent("7", n, fmt.Sprint(1000+n), text, t0.Add(2*time.Minute))
		e.Title = fmt.Sprintf("第%d章", n) // the title the pages list
		evs = append(evs, e)
	}
	apply(t, s, evs...)
	if cs := chapters(t, s, "7"); len(cs) != storedChapters {
		t.Fatalf("setup: %d chapters stored, want %d", len(cs), storedChapters)
	}
}

// keptRefs spells what a reader sees of a book's chapters: position, id, title, URL and
// text.
func keptRefs(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	var b strings.Builder
	for _, c := range chapters(t, s, id) {
		text := "-"
		if c.Text != nil {
			text = *c.Text
		}
		fmt.Fprintf(&b, "%d %s %s %s %s\n", c.Num, c.ChapterID, c.Title, c.URL, text)
	}
	return b.String()
}

// resync is what a later sync (job j2, an hour after the first) publishes: its metadata,
// its pages and its completion.
func resync(jobID string, pages [][]events.ChapterRef, at time.Time) (meta events.Payload, toc []events.Payload, done *events.JobEvent) {
	m := bookEvent("7", "書", at)
	m.JobID = jobID
	total := 0
	for k, p := range pages {
		e := tocEvent("7", k+1, len(pages), p, at.Add(time.Duration(k)*time.Second))
		e.JobID = jobID
		toc = append(toc, e)
		for _, c := range p {
			total = max(total, c.Number)
		}
	}
	return m, toc, completed(jobID, "7", total, len(pages), at.Add(time.Minute))
}

// paged cuts refs into pages of perPage.
func paged(rs []events.ChapterRef) [][]events.ChapterRef {
	var out [][]events.ChapterRef
	for len(rs) > perPage {
		out = append(out, rs[:perPage])
		rs = rs[perPage:]
	}
	return append(out, rs)
}

// TestShrinkRefused: a sync that lists none of a stored book's 312 chapters, or far
// fewer, changes none of them, whether its events come in one batch or one by one, the
// completion before or after the pages: the refs, their texts, the chapter total and the
// page count stay; the job is recorded as failed with the reason, and the batch reports
// the refusal (for the dead letter).
func TestShrinkRefused(t *testing.T) {
	t.Parallel()
	newest10 := refs(1, 10, 1000+storedChapters-10) // the site lists its 10 newest chapters as 1..10
	cases := []struct {
		name   string
		pages  [][]events.ChapterRef
		listed int
	}{
		{"0 chapters", [][]events.ChapterRef{nil}, 0},
		{"10 chapters", [][]events.ChapterRef{newest10}, 10},
		// The list lost its tail: the pages before the last are the stored ones.
		{"155 chapters on 4 pages", paged(refs(1, 155, 1000)), 155},
	}
	orders := []struct {
		name  string
		apply func(t *testing.T, s *store.Store, meta events.Payload, toc []events.Payload, done *events.JobEvent) store.Result
	}{
		{"one batch", func(t *testing.T, s *store.Store, meta events.Payload, toc []events.Payload, done *events.JobEvent) store.Result {
			return apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
		}},
		{"one event per batch", func(t *testing.T, s *store.Store, meta events.Payload, toc []events.Payload, done *events.JobEvent) store.Result {
			apply(t, s, meta)
			for _, p := range toc {
				apply(t, s, p)
			}
			return apply(t, s, done)
		}},
		{"completion before the pages", func(t *testing.T, s *store.Store, meta events.Payload, toc []events.Payload, done *events.JobEvent) store.Result {
			res := apply(t, s, meta, done)
			apply(t, s, toc...)
			return res
		}},
	}
	for _, tc := range cases {
		for _, order := range orders {
			t.Run(tc.name+"/"+order.name, func(t *testing.T) {
				t.Parallel()
				s, _ := newStore(t)
				storeBook312(t, s)
				before := keptRefs(t, s, "7")
				meta, toc, done := resync("j2", tc.pages, t0.Add(time.Hour))
				if done.Chapters != tc.listed {
					t.Fatalf("the sync lists %d chapters, want %d", done.Chapters, tc.listed)
				}
				res := order.apply(t, s, meta, toc, done)

				if after := keptRefs(t, s, "7"); after != before {
					t.Errorf("the stored chapters changed: %d refs now, want the %d stored, unchanged", len(chapters(t, s, "7")), storedChapters)
				}
				b := book(t, s, "7")
				if b.ChapterTotal == nil || *b.ChapterTotal != storedChapters || b.TOCPages == nil || *b.TOCPages != storedPages ||
					b.SyncJobID == nil || *b.SyncJobID != "j1" {
					t.Errorf("the refused sync was recorded on the book: chapter_total %v toc_pages %v sync_job_id %v",
						deref(b.ChapterTotal), deref(b.TOCPages), deref(b.SyncJobID))
				}
				// A page before the last of a paginated list is written, with the page
				// count it reports; a list on one page writes nothing.
				if len(tc.pages) == 1 && (b.TOCPagesSeen == nil || *b.TOCPagesSeen != storedPages) {
					t.Errorf("toc_pages_seen = %v, want the stored %d", deref(b.TOCPagesSeen), storedPages)
				}
				st, err := s.BookStates(t.Context(), xsw, "7")
				if err != nil || len(st) != 1 || !st[0].Complete || st[0].Chapters != storedChapters {
					t.Errorf("state %+v, %v: want the 312 stored chapters, complete", st, err)
				}

				j, err := s.Job(t.Context(), "j2")
				if err != nil {
					t.Fatal(err)
				}
				reason := fmt.Sprintf("shrink refused: the site listed %d chapters, %d stored", tc.listed, storedChapters)
				if j.Status != "failed" || j.Error != reason || !j.Dead || j.Permanent {
					t.Errorf("history row: status %q error %q dead %v permanent %v; want failed, %q, dead",
						j.Status, j.Error, j.Dead, j.Permanent, reason)
				}
				checkRefused(t, res, done, tc.listed)
				if order.name == "one batch" && tc.listed == 10 {
					// The whole list on one page: refused before the completion.
					want := store.Refusal{Event: 1, Site: xsw, BookID: "7", JobID: "j2", Listed: 10, Stored: storedChapters, Peak: storedChapters}
					if r := refusals(res); len(r) != 2 || r[0] != want {
						t.Errorf("refusals %+v, want the page's %+v first", r, want)
					}
				}

				// Applied again (a redelivery), it is refused again and changes nothing.
				if res := apply(t, s, done); len(refusals(res)) != 1 {
					t.Errorf("redelivered completion: refusals %+v, want it refused again", refusals(res))
				}
				if after := keptRefs(t, s, "7"); after != before {
					t.Error("a redelivered refused completion changed the chapters")
				}

				// The retry, once the site lists the book again, applies.
				meta, toc, done = resync("j3", paged(refs(1, 320, 1000)), t0.Add(3*time.Hour))
				apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
				if cs := chapters(t, s, "7"); len(cs) != 320 || cs[0].Text == nil || *cs[0].Text != "正文一" {
					t.Errorf("after a good sync: %d chapters, want 320 with the texts kept", len(cs))
				}
				if j, _ := s.Job(t.Context(), "j3"); j.Status != "completed" {
					t.Errorf("good sync recorded as %q", j.Status)
				}
			})
		}
	}
}

// TestModerateShrinkApplies: a sync listing a few chapters fewer than stored (an author
// removed two), or exactly ShrinkFloor of them, replaces the stored list as always.
func TestModerateShrinkApplies(t *testing.T) {
	t.Parallel()
	for _, listed := range []int{310, 156} {
		t.Run(fmt.Sprint(listed), func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t)
			storeBook312(t, s)
			meta, toc, done := resync("j2", paged(refs(1, listed, 1000)), t0.Add(time.Hour))
			res := apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
			if r := refusals(res); len(r) != 0 {
				t.Errorf("refusals %+v, want none", r)
			}
			cs := chapters(t, s, "7")
			if len(cs) != listed || cs[listed-1].Num != listed || cs[0].Text == nil {
				t.Errorf("%d chapters, want %d with the texts kept", len(cs), listed)
			}
			b := book(t, s, "7")
			if b.ChapterTotal == nil || *b.ChapterTotal != listed || b.SyncJobID == nil || *b.SyncJobID != "j2" {
				t.Errorf("chapter_total %v sync_job_id %v, want %d and j2", deref(b.ChapterTotal), deref(b.SyncJobID), listed)
			}
			if j, err := s.Job(t.Context(), "j2"); err != nil || j.Status != "completed" || j.Error != "" {
				t.Errorf("history row %+v, %v: want completed", j, err)
			}
		})
	}
}

// TestResyncPastStoredPages: an incremental resync of a paginated list walks from the
// last stored page on, numbering on from the stored chapters: its pages list only a few
// of them, and it applies, whether its events come in one batch or one by one.
func TestResyncPastStoredPages(t *testing.T) {
	t.Parallel()
	for _, oneBatch := range []bool{true, false} {
		t.Run(fmt.Sprintf("one batch %v", oneBatch), func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t)
			storeBook312(t, s)
			at := t0.Add(time.Hour)
			m := bookEvent("7", "書", at)
			p7 := tocEvent("7", 7, 8, refs(301, 350, 1000), at)
			p8 := tocEvent("7", 8, 8, refs(351, 360, 1000), at.Add(time.Second))
			m.JobID, p7.JobID, p8.JobID = "j2", "j2", "j2"
			evs := []events.Payload{m, p7, p8, completed("j2", "7", 360, 8, at.Add(time.Minute))}
			batches := [][]events.Payload{evs}
			if !oneBatch {
				batches = [][]events.Payload{evs[:1], evs[1:2], evs[2:3], evs[3:]}
			}
			for _, b := range batches {
				if r := refusals(apply(t, s, b...)); len(r) != 0 {
					t.Errorf("refusals %+v, want none", r)
				}
			}
			if cs := chapters(t, s, "7"); len(cs) != 360 || cs[311].Text == nil {
				t.Errorf("%d chapters, want 360 with the texts kept", len(cs))
			}
			b := book(t, s, "7")
			if *b.ChapterTotal != 360 || *b.TOCPages != 8 || *b.TOCPagesSeen != 8 {
				t.Errorf("chapter_total %d toc_pages %d toc_pages_seen %d, want 360, 8, 8", *b.ChapterTotal, *b.TOCPages, *b.TOCPagesSeen)
			}
		})
	}
}

// TestStaleCompletionNotRefused: a completion older than the stored sync (redelivered
// late) changes nothing, as before, and is not refused: no dead letter for it.
func TestStaleCompletionNotRefused(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	storeBook312(t, s)
	before := keptRefs(t, s, "7")
	if r := refusals(apply(t, s, completed("j0", "7", 0, 1, t0))); len(r) != 0 {
		t.Errorf("refusals %+v, want none", r)
	}
	if after := keptRefs(t, s, "7"); after != before {
		t.Error("a stale completion changed the chapters")
	}
	if b := book(t, s, "7"); *b.SyncJobID != "j1" || *b.ChapterTotal != storedChapters {
		t.Errorf("stale completion took over: %v, %v", *b.SyncJobID, *b.ChapterTotal)
	}
}

// TestShrinkErosionRefused: a book of 312 chapters cannot be worn down by syncs that
// each list a little more than half of what the last left: 160 applies, but 81 (half of
// 160) is refused, being fewer than half of the 312 the book held, and so is every sync
// below 156 however many steps it takes. A sync that grows the book raises the mark.
func TestShrinkErosionRefused(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	storeBook312(t, s)
	if b := book(t, s, "7"); b.ChapterPeak == nil || *b.ChapterPeak != storedChapters {
		t.Fatalf("setup: chapter_peak %v, want %d", deref(b.ChapterPeak), storedChapters)
	}
	steps := []struct {
		job    string
		listed int
		// refused: the sync is refused; held and peak: the chapters stored and the
		// book's chapter_peak after it.
		refused    bool
		held, peak int
	}{
		{"j2", 160, false, 160, 312},
		{"j3", 81, true, 160, 312},
		{"j4", 155, true, 160, 312},
		{"j5", 156, false, 156, 312},
		{"j6", 80, true, 156, 312},
		{"j7", 400, false, 400, 400},
		{"j8", 199, true, 400, 400},
	}
	at := t0
	for _, st := range steps {
		at = at.Add(time.Hour)
		meta, toc, done := resync(st.job, paged(refs(1, st.listed, 1000)), at)
		stored := len(chapters(t, s, "7"))
		res := apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)

		j, err := s.Job(t.Context(), st.job)
		if err != nil {
			t.Fatal(err)
		}
		if !st.refused {
			if len(res.Refused) != 0 || j.Status != "completed" {
				t.Errorf("%s listing %d of %d: refusals %+v, job %s; want it applied", st.job, st.listed, stored, res.Refused, j.Status)
			}
		} else {
			peak := max(st.peak, stored)
			want := store.Refusal{Event: len(res.Changed) - 1, Site: xsw, BookID: "7", JobID: st.job,
				Listed: st.listed, Stored: stored, Peak: peak}
			if r := refusals(res); len(r) == 0 || r[len(r)-1] != want {
				t.Errorf("%s: refusals %+v, want the completion's %+v", st.job, r, want)
			}
			reason := fmt.Sprintf("shrink refused: the site listed %d chapters, %d stored", st.listed, stored)
			if peak > stored {
				reason += fmt.Sprintf(", %d at the book's peak", peak)
			}
			if j.Status != "failed" || j.Error != reason || !j.Dead {
				t.Errorf("%s: history %s %q dead %v, want failed, %q, dead", st.job, j.Status, j.Error, j.Dead, reason)
			}
		}
		b := book(t, s, "7")
		if n := len(chapters(t, s, "7")); n != st.held || b.ChapterTotal == nil || *b.ChapterTotal != st.held ||
			b.ChapterPeak == nil || *b.ChapterPeak != st.peak {
			t.Errorf("after %s listing %d: %d chapters, chapter_total %v, chapter_peak %v; want %d, %d, %d",
				st.job, st.listed, n, deref(b.ChapterTotal), deref(b.ChapterPeak), st.held, st.held, st.peak)
		}
	}
}

// bookRow reads book 7 of xsw as to_jsonb spells it, but for checked_at (which a refused
// sync sets to its attempt) and updated_at (when the row was last written).
func bookRow(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var row string
	err := pool.QueryRow(t.Context(), `SELECT (to_jsonb(b) - 'checked_at' - 'updated_at')::text
		FROM books b WHERE site = $1 AND id = '7'`, xsw).Scan(&row)
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// TestShrinkRefusedKeepsMetadata: a sync of a stored, unfinished book of 312 chapters
// whose metadata says the book is finished, with another last chapter and status, and
// whose list is empty, is refused, and leaves the book exactly as it was: not finished
// (so it is due again after the refresh interval for unfinished books, not a week), the
// same last chapter, counts, description and times, but checked_at, which is the
// attempt. That holds whatever the order of its events, and for a reader's fetch out of
// turn (its metadata and a list of one page, without a completion). The metadata
// delivered again changes nothing; a later sync applies as usual.
func TestShrinkRefusedKeepsMetadata(t *testing.T) {
	t.Parallel()
	type refusedSync struct {
		meta *events.BookFetched
		toc  []events.Payload
		done *events.JobEvent // nil for a reader's fetch
	}
	orders := []struct {
		name   string
		reader bool
		apply  func(t *testing.T, s *store.Store, e refusedSync) store.Result
	}{
		{"one batch", false, func(t *testing.T, s *store.Store, e refusedSync) store.Result {
			return apply(t, s, append(append([]events.Payload{e.meta}, e.toc...), e.done)...)
		}},
		{"one event per batch", false, func(t *testing.T, s *store.Store, e refusedSync) store.Result {
			apply(t, s, e.meta)
			for _, p := range e.toc {
				apply(t, s, p)
			}
			return apply(t, s, e.done)
		}},
		{"completion before the pages", false, func(t *testing.T, s *store.Store, e refusedSync) store.Result {
			res := apply(t, s, e.meta, e.done)
			apply(t, s, e.toc...)
			return res
		}},
		// Redelivered late, after a failure of the database.
		{"metadata after its completion", false, func(t *testing.T, s *store.Store, e refusedSync) store.Result {
			res := apply(t, s, e.done)
			apply(t, s, e.toc...)
			apply(t, s, e.meta)
			return res
		}},
		{"reader, one batch", true, func(t *testing.T, s *store.Store, e refusedSync) store.Result {
			return apply(t, s, append([]events.Payload{e.meta}, e.toc...)...)
		}},
		{"reader, one event per batch", true, func(t *testing.T, s *store.Store, e refusedSync) store.Result {
			apply(t, s, e.meta)
			return apply(t, s, e.toc...)
		}},
	}
	for _, order := range orders {
		t.Run(order.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			storeBook312(t, s)
			if b := book(t, s, "7"); b.Finished || b.Status != "連載中" || b.LastChapterNum == nil {
				t.Fatalf("setup: finished %v status %q last chapter %v", b.Finished, b.Status, deref(b.LastChapterNum))
			}
			before, refsBefore := bookRow(t, pool), keptRefs(t, s, "7")

			at := t0.Add(time.Hour)
			job := "j2"
			if order.reader {
				job = "read-" + events.Key(xsw, "7")
			}
			meta, toc, done := resync(job, [][]events.ChapterRef{nil}, at)
			m := meta.(*events.BookFetched)
			m.Book.Status, m.Book.Finished = "全本", true
			m.Book.LastChapterTitle, m.Book.LastChapterURL, m.Book.LastChapterID = "第0章", "https://m.xsw.tw/7/999.html", "999"
			m.Book.Description, m.Book.Volumes = "", []events.Volume{{Title: "卷一", FirstChapter: 1}}
			e := refusedSync{meta: m, toc: toc, done: done}
			if order.reader {
				e.done = nil
			}
			res := order.apply(t, s, e)

			if len(res.Refused) == 0 {
				t.Fatalf("refusals %+v, want the sync refused", res.Refused)
			}
			if after := bookRow(t, pool); after != before {
				t.Errorf("the refused sync changed the book:\n got %s\nwant %s", after, before)
			}
			if keptRefs(t, s, "7") != refsBefore {
				t.Error("the refused sync changed the chapters")
			}
			b := book(t, s, "7")
			last := m.FetchedAt
			if e.done != nil {
				last = e.done.At
			}
			if b.Finished || b.CheckedAt == nil || !b.CheckedAt.Equal(last) {
				t.Errorf("finished %v checked_at %v; want unfinished, checked at the attempt %v", b.Finished, deref(b.CheckedAt), last)
			}

			// Its metadata delivered again is older than the attempt: nothing changes.
			apply(t, s, m)
			if after := bookRow(t, pool); after != before {
				t.Errorf("the refused sync's metadata, delivered again, changed the book:\n got %s\nwant %s", after, before)
			}

			// The retry, once the site lists the book again, applies its metadata.
			meta, toc, done = resync("j3", paged(refs(1, 320, 1000)), t0.Add(3*time.Hour))
			meta.(*events.BookFetched).Book.Finished = true
			apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
			var kept bool
			if err := pool.QueryRow(t.Context(), `SELECT meta_before IS NOT NULL OR meta_job IS NOT NULL FROM books
				WHERE site = $1 AND id = '7'`, xsw).Scan(&kept); err != nil {
				t.Fatal(err)
			}
			if b := book(t, s, "7"); !b.Finished || *b.ChapterTotal != 320 || kept {
				t.Errorf("after a good sync: finished %v, chapter_total %v, metadata kept for a verdict %v; want finished, 320, none kept",
					b.Finished, *b.ChapterTotal, kept)
			}
		})
	}
}

// refusals returns what a batch refused.
func refusals(res store.Result) []store.Refusal { return res.Refused }

// checkRefused checks that the batch res (ending with the completion done) reported its
// completion refused, listing listed chapters of the 312 stored.
func checkRefused(t *testing.T, res store.Result, done *events.JobEvent, listed int) {
	t.Helper()
	last := len(res.Changed) - 1
	for _, r := range res.Refused {
		if r.Event != last {
			continue
		}
		want := store.Refusal{Event: last, Site: xsw, BookID: "7", JobID: done.JobID, Listed: listed, Stored: storedChapters, Peak: storedChapters}
		if r != want {
			t.Errorf("refusal %+v, want %+v", r, want)
		}
		return
	}
	t.Errorf("refusals %+v: the completion (event %d) is not among them", res.Refused, last)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
