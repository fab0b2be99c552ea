package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/indexer/internal/store"
)

// acceptShrink is an operator's acceptance of the shrink of book 7, at.
func acceptShrink(at time.Time) *events.BookShrinkAccepted {
	a := events.NewBookShrinkAccepted(xsw, "7", "admin", at)
	return &a
}

// TestShrinkAccepted: the site of a stored book of 312 chapters now lists far fewer (it
// removed the others), and the sync is refused; an operator accepts the shrink, and the
// book's next sync applies, whatever the order of its events and whether the acceptance
// shares its batch: the chapters past its end are deleted, the book's mark becomes its
// count, the acceptance is used up and the job is recorded as completed. The mark then
// judges the syncs that follow: one listing a quarter of it is refused, until the
// operator accepts again. The acceptance delivered again after its use, or an older one,
// changes nothing.
func TestShrinkAccepted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		pages  [][]events.ChapterRef
		listed int
	}{
		{"40 chapters", [][]events.ChapterRef{refs(1, 40, 1000)}, 40},
		{"120 chapters on 3 pages", paged(refs(1, 120, 1000)), 120},
		{"0 chapters", [][]events.ChapterRef{nil}, 0},
	}
	type syncEvents struct {
		accept *events.BookShrinkAccepted
		meta   events.Payload
		toc    []events.Payload
		done   *events.JobEvent
	}
	orders := []struct {
		name  string
		apply func(t *testing.T, s *store.Store, e syncEvents) []store.Refusal
	}{
		{"acceptance, then the sync in one batch", func(t *testing.T, s *store.Store, e syncEvents) []store.Refusal {
			apply(t, s, e.accept)
			return apply(t, s, append(append([]events.Payload{e.meta}, e.toc...), e.done)...).Refused
		}},
		{"one event per batch", func(t *testing.T, s *store.Store, e syncEvents) []store.Refusal {
			var refused []store.Refusal
			for _, ev := range append(append([]events.Payload{e.accept, e.meta}, e.toc...), e.done) {
				refused = append(refused, apply(t, s, ev).Refused...)
			}
			return refused
		}},
		{"acceptance and sync in one batch", func(t *testing.T, s *store.Store, e syncEvents) []store.Refusal {
			return apply(t, s, append(append([]events.Payload{e.accept, e.meta}, e.toc...), e.done)...).Refused
		}},
		{"completion before the pages", func(t *testing.T, s *store.Store, e syncEvents) []store.Refusal {
			refused := apply(t, s, e.accept, e.meta, e.done).Refused
			return append(refused, apply(t, s, e.toc...).Refused...)
		}},
	}
	for _, tc := range cases {
		for _, order := range orders {
			t.Run(tc.name+"/"+order.name, func(t *testing.T) {
				t.Parallel()
				s, _ := newStore(t)
				storeBook312(t, s)

				// As today: the sync is refused.
				meta, toc, done := resync("j2", tc.pages, t0.Add(time.Hour))
				res := apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
				checkRefused(t, res, done, tc.listed)
				if n := len(chapters(t, s, "7")); n != storedChapters {
					t.Fatalf("the refused sync left %d chapters", n)
				}

				acceptedAt := t0.Add(90 * time.Minute)
				meta, toc, done = resync("j3", tc.pages, t0.Add(2*time.Hour))
				refused := order.apply(t, s, syncEvents{accept: acceptShrink(acceptedAt), meta: meta, toc: toc, done: done})

				if len(refused) != 0 {
					t.Errorf("refusals %+v, want the accepted sync applied", refused)
				}
				cs := chapters(t, s, "7")
				if len(cs) != tc.listed || (tc.listed > 0 && cs[len(cs)-1].Num != tc.listed) {
					t.Errorf("%d chapters stored, want the %d listed", len(cs), tc.listed)
				}
				if tc.listed > 0 && (cs[0].Text == nil || *cs[0].Text != "正文一") {
					t.Error("the text of chapter 1 was lost")
				}
				b := book(t, s, "7")
				if b.ChapterTotal == nil || *b.ChapterTotal != tc.listed || b.ChapterPeak == nil || *b.ChapterPeak != tc.listed ||
					b.SyncJobID == nil || *b.SyncJobID != "j3" {
					t.Errorf("chapter_total %v chapter_peak %v sync_job_id %v, want %d, %d, j3",
						deref(b.ChapterTotal), deref(b.ChapterPeak), deref(b.SyncJobID), tc.listed, tc.listed)
				}
				if b.ShrinkAccepted || b.ShrinkAcceptedAt == nil || !b.ShrinkAcceptedAt.Equal(acceptedAt) {
					t.Errorf("shrink_accepted %v at %v, want used up, accepted at %v", b.ShrinkAccepted, deref(b.ShrinkAcceptedAt), acceptedAt)
				}
				if j, err := s.Job(t.Context(), "j3"); err != nil || j.Status != "completed" || j.Error != "" || j.Dead {
					t.Errorf("history row %+v, %v: want completed", j, err)
				}
				st, err := s.BookStates(t.Context(), xsw, "7")
				if err != nil || len(st) != 1 || !st[0].Complete || st[0].Chapters != tc.listed {
					t.Errorf("state %+v, %v: want the %d listed chapters, complete", st, err, tc.listed)
				}

				// Delivered again after its use, or an older one: the book is not armed again.
				for _, at := range []time.Time{acceptedAt, t0.Add(30 * time.Minute)} {
					if res := apply(t, s, acceptShrink(at)); res.Changed[0] != 0 || len(res.Books) != 0 {
						t.Errorf("acceptance of %v after its use: changed %d, books %+v; want nothing", at, res.Changed[0], res.Books)
					}
				}
				if b := book(t, s, "7"); b.ShrinkAccepted {
					t.Error("the acceptance delivered again armed the book again")
				}

				if tc.listed == 0 {
					// Nothing held: the book grows again as any new book does.
					meta, toc, done = resync("j4", [][]events.ChapterRef{refs(1, 10, 1000)}, t0.Add(3*time.Hour))
					if r := apply(t, s, append(append([]events.Payload{meta}, toc...), done)...).Refused; len(r) != 0 {
						t.Errorf("a sync listing 10 of an emptied book: refusals %+v", r)
					}
					if b := book(t, s, "7"); len(chapters(t, s, "7")) != 10 || *b.ChapterPeak != 10 {
						t.Errorf("after a sync listing 10: %d chapters, chapter_peak %d", len(chapters(t, s, "7")), *b.ChapterPeak)
					}
					return
				}

				// The new mark judges the next syncs: a quarter of it is refused.
				quarter := tc.listed / 4
				meta, toc, done = resync("j4", [][]events.ChapterRef{refs(1, quarter, 1000)}, t0.Add(3*time.Hour))
				res = apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
				want := store.Refusal{Event: len(res.Changed) - 1, Site: xsw, BookID: "7", JobID: "j4",
					Listed: quarter, Stored: tc.listed, Peak: tc.listed}
				if r := res.Refused; len(r) == 0 || r[len(r)-1] != want {
					t.Errorf("a sync listing %d after the accepted %d: refusals %+v, want %+v", quarter, tc.listed, r, want)
				}
				if n := len(chapters(t, s, "7")); n != tc.listed {
					t.Errorf("the refused sync left %d chapters, want %d", n, tc.listed)
				}

				// Accepted again (a newer acceptance), it applies.
				if res := apply(t, s, acceptShrink(t0.Add(4*time.Hour))); res.Changed[0] != 1 {
					t.Errorf("a newer acceptance changed %d rows, want 1", res.Changed[0])
				}
				meta, toc, done = resync("j5", [][]events.ChapterRef{refs(1, quarter, 1000)}, t0.Add(5*time.Hour))
				if r := apply(t, s, append(append([]events.Payload{meta}, toc...), done)...).Refused; len(r) != 0 {
					t.Errorf("the sync accepted again: refusals %+v", r)
				}
				if b := book(t, s, "7"); len(chapters(t, s, "7")) != quarter || *b.ChapterPeak != quarter || b.ShrinkAccepted {
					t.Errorf("after the sync accepted again: %d chapters, chapter_peak %d, acceptance pending %v; want %d, %d, used up",
						len(chapters(t, s, "7")), *b.ChapterPeak, b.ShrinkAccepted, quarter, quarter)
				}
			})
		}
	}
}

// TestShrinkAcceptedUnknownBook: an acceptance of a book not stored has nothing to
// accept: it writes nothing, and the book, stored later, is guarded as any other.
func TestShrinkAcceptedUnknownBook(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	res := apply(t, s, acceptShrink(t0.Add(-time.Hour)))
	if res.Changed[0] != 0 || len(res.Books) != 0 {
		t.Errorf("acceptance of a book not stored: changed %d, books %+v; want nothing", res.Changed[0], res.Books)
	}
	if _, err := s.Book(t.Context(), xsw, "7"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("book 7 after the acceptance: %v, want not found", err)
	}

	storeBook312(t, s)
	meta, toc, done := resync("j2", [][]events.ChapterRef{refs(1, 40, 1000)}, t0.Add(time.Hour))
	checkRefused(t, apply(t, s, append(append([]events.Payload{meta}, toc...), done)...), done, 40)
	if b := book(t, s, "7"); b.ShrinkAccepted || b.ShrinkAcceptedAt != nil || len(chapters(t, s, "7")) != storedChapters {
		t.Errorf("shrink_accepted %v at %v, %d chapters; want no acceptance, %d chapters",
			b.ShrinkAccepted, deref(b.ShrinkAcceptedAt), len(chapters(t, s, "7")), storedChapters)
	}
	if j, err := s.Job(t.Context(), "j2"); err != nil || j.Status != "failed" {
		t.Errorf("history row %+v, %v: want failed", j, err)
	}
}

// TestShrinkAcceptedMidSync: an acceptance that arrives while a sync is under way (its
// metadata and last page before it, its completion after) judges the events after it
// only: the page is refused (its refs are not written, its metadata is put back), the
// completion applies and uses the acceptance up (the forced sync that follows an
// acceptance writes the rest). The book is left the same whether the events come in
// one batch or one by one.
func TestShrinkAcceptedMidSync(t *testing.T) {
	t.Parallel()
	var rows, refsLeft []string
	for _, oneBatch := range []bool{true, false} {
		s, pool := newStore(t)
		storeBook312(t, s)
		// The site renumbered what it kept: other ids, the book finished.
		meta, toc, done := resync("j2", [][]events.ChapterRef{refs(1, 40, 5000)}, t0.Add(time.Hour))
		meta.(*events.BookFetched).Book.Finished = true
		evs := append(append([]events.Payload{meta}, toc...), acceptShrink(t0.Add(time.Hour+time.Second)), done)
		var refused []store.Refusal
		if oneBatch {
			refused = apply(t, s, evs...).Refused
		} else {
			for _, ev := range evs {
				refused = append(refused, apply(t, s, ev).Refused...)
			}
		}
		if len(refused) != 1 || refused[0].JobID != "j2" || refused[0].Listed != 40 {
			t.Errorf("one batch %v: refusals %+v, want the last page's alone", oneBatch, refused)
		}
		b := book(t, s, "7")
		if len(chapters(t, s, "7")) != 40 || *b.ChapterPeak != 40 || b.ShrinkAccepted || *b.SyncJobID != "j2" {
			t.Errorf("one batch %v: %d chapters, chapter_peak %d, acceptance pending %v, sync %s; want 40, 40, used up, j2",
				oneBatch, len(chapters(t, s, "7")), *b.ChapterPeak, b.ShrinkAccepted, *b.SyncJobID)
		}
		if j, err := s.Job(t.Context(), "j2"); err != nil || j.Status != "completed" {
			t.Errorf("one batch %v: history row %+v, %v; want completed", oneBatch, j, err)
		}
		var row string
		if err := pool.QueryRow(t.Context(), `SELECT (to_jsonb(b) - 'created_at' - 'updated_at' - 'shrink_armed_at')::text
			FROM books b WHERE site = $1 AND id = '7'`, xsw).Scan(&row); err != nil {
			t.Fatal(err)
		}
		rows, refsLeft = append(rows, row), append(refsLeft, keptRefs(t, s, "7"))
	}
	if rows[0] != rows[1] || refsLeft[0] != refsLeft[1] {
		t.Errorf("the book differs by batching:\none batch     %s\n%s\none by one    %s\n%s", rows[0], refsLeft[0], rows[1], refsLeft[1])
	}
}

// TestShrinkAcceptanceLapses: an acceptance that no applied sync used within
// AcceptanceLifetime of its recording (its sync died, say) lapses: the guard is back, and
// a sync listing far fewer chapters is refused again; one a minute younger still holds.
func TestShrinkAcceptanceLapses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		age   time.Duration
		holds bool
	}{
		{"a minute before it lapses", store.AcceptanceLifetime - time.Minute, true},
		{"a minute after it lapsed", store.AcceptanceLifetime + time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			storeBook312(t, s)
			apply(t, s, acceptShrink(t0.Add(time.Hour)))
			if _, err := pool.Exec(t.Context(), `UPDATE books SET shrink_armed_at = now() - $1::interval WHERE site = $2 AND id = '7'`,
				tc.age.String(), xsw); err != nil {
				t.Fatal(err)
			}
			meta, toc, done := resync("j2", [][]events.ChapterRef{refs(1, 40, 1000)}, t0.Add(2*time.Hour))
			res := apply(t, s, append(append([]events.Payload{meta}, toc...), done)...)
			want := storedChapters
			if tc.holds {
				want = 40
				if len(res.Refused) != 0 {
					t.Errorf("refused %+v under an acceptance %v old", res.Refused, tc.age)
				}
			} else {
				checkRefused(t, res, done, 40)
			}
			if n := len(chapters(t, s, "7")); n != want {
				t.Errorf("%d chapters after a sync under an acceptance %v old, want %d", n, tc.age, want)
			}
		})
	}
}
