package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/xswtw/xsw/events"
)

// writer applies one batch of events inside its transaction. It queues the statements
// and sends them to Postgres together (pipelined, as one pgx.Batch) whenever the next
// step depends on a result, and at the end: a batch costs a few round trips instead of
// one per statement. Statements are sent in the order they were queued.
//
// Table-of-contents pages are not written as they come: a book's pages wait, merged
// into one multi-row statement, until another event about the same book or the end of
// the batch. Statements about different books touch different rows, so only the order
// within a book matters, and it is kept.
type writer struct {
	tx pgx.Tx
	// merge lets a book's consecutive pages share one statement. Without it every page
	// is its own statement, in the order of the events: the precise way to find which
	// event Postgres refuses.
	merge bool

	queue   pgx.Batch
	steps   []step    // what each queued statement is, in queue order
	changed []int64   // Result.Changed
	refused []Refusal // Result.Refused, in the order found (sorted by settle)
	// restored counts the refusals whose metadata restore is queued (restoreRefused).
	restored int
	toc      map[book]*tocBook
}

// step describes a queued statement.
type step struct {
	// event is the index of the event whose rows the statement changes; they count for
	// it in Result.Changed. -1 marks a read of the whole batch.
	event int
	// what says what the statement does, for its error.
	what string
	// rows reads a statement that returns rows (and closes them); nil for one whose
	// affected rows are counted for event.
	rows func(pgx.Rows) error
}

// eventError is the failure of writing one event, with the event's index.
type eventError struct {
	event int
	err   error
}

func (e *eventError) Error() string { return e.err.Error() }

func (e *eventError) Unwrap() error { return e.err }

func newWriter(tx pgx.Tx, n int, merge bool) *writer {
	return &writer{tx: tx, merge: merge, changed: make([]int64, n), toc: make(map[book]*tocBook)}
}

// fail returns the error of writing event i: a failure of a statement sent already, or
// else err for event i, unless a statement queued before it fails first.
func (w *writer) fail(ctx context.Context, i int, err error) error {
	if _, ok := errors.AsType[*eventError](err); ok {
		return err
	}
	if _, ferr := w.flush(ctx); ferr != nil {
		return ferr
	}
	return &eventError{event: i, err: err}
}

// exec queues a statement whose affected rows count for event i.
func (w *writer) exec(i int, what, sql string, args ...any) {
	w.queue.Queue(sql, args...)
	w.steps = append(w.steps, step{event: i, what: what})
}

// query queues a statement whose rows read reads.
func (w *writer) query(i int, what string, read func(pgx.Rows) error, sql string, args ...any) {
	w.queue.Queue(sql, args...)
	w.steps = append(w.steps, step{event: i, what: what, rows: read})
}

// send queues a statement for event i, sends the queue and returns the rows the
// statement affected: for the statements whose outcome decides what comes next.
func (w *writer) send(ctx context.Context, i int, what, sql string, args ...any) (int64, error) {
	w.exec(i, what, sql, args...)
	tag, err := w.flush(ctx)
	return tag.RowsAffected(), err
}

// flush sends every queued statement and reads their results in order. It returns the
// command tag of the last one; the first failure stops it, as it aborts the transaction.
func (w *writer) flush(ctx context.Context) (pgconn.CommandTag, error) {
	if len(w.steps) == 0 {
		return pgconn.CommandTag{}, nil
	}
	queue, steps := w.queue, w.steps // the results are read from queue
	w.queue, w.steps = pgx.Batch{}, steps[:0]
	br := w.tx.SendBatch(ctx, &queue)
	tag, err := w.results(br, steps)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = &eventError{event: steps[len(steps)-1].event, err: cerr}
	}
	return tag, err
}

// results reads the results of steps from br.
func (w *writer) results(br pgx.BatchResults, steps []step) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	for _, s := range steps {
		var err error
		if s.rows == nil {
			tag, err = br.Exec()
			w.changed[s.event] += tag.RowsAffected()
		} else {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				err = s.rows(rows)
			}
			tag = pgconn.CommandTag{}
		}
		if err != nil {
			return tag, &eventError{event: s.event, err: fmt.Errorf("%s: %w", s.what, err)}
		}
	}
	return tag, nil
}

// apply writes event i, or queues its statements, and returns the book it touched (the
// zero book when it touched none of the book tables).
func (w *writer) apply(ctx context.Context, i int, ev events.Payload) (book, error) {
	switch e := ev.(type) {
	case *events.TOCPageFetched:
		b, err := bookOf(e.Site, e.BookID)
		if err != nil {
			return book{}, err
		}
		return b, w.putTOCPage(i, b, e)
	case *events.BookFetched:
		b, err := bookOf(e.Site, e.BookID)
		if err != nil {
			return book{}, err
		}
		w.writeTOC(b)
		return b, w.putBook(ctx, i, b, e)
	case *events.ChapterFetched:
		b, err := bookOf(e.Site, e.BookID)
		if err != nil {
			return book{}, err
		}
		w.writeTOC(b)
		return b, w.putChapter(i, b, e)
	case *events.CategoriesFetched:
		return book{}, w.putCategories(i, e)
	case *events.BookPurgeRequested:
		b, err := bookOf(e.Site, e.BookID)
		if err != nil {
			return book{}, err
		}
		w.writeTOC(b)
		w.purgeTexts(i, b, e)
		return b, nil
	case *events.BookShrinkAccepted:
		b, err := bookOf(e.Site, e.BookID)
		if err != nil {
			return book{}, err
		}
		// The events before it are judged without it, those after with it, whatever the
		// batches: a sync under way may have its last page refused and its completion
		// applied.
		if err := w.settleBook(ctx, b); err != nil {
			return book{}, err
		}
		w.acceptShrink(i, b, e)
		return book{}, nil // nothing a reader sees changed: no announcement
	case *events.BooksRead:
		return book{}, w.addReads(ctx, i, e)
	case *events.JobEvent:
		b, err := bookOf(e.Site, e.BookID)
		if err != nil {
			return book{}, err
		}
		switch e.Kind {
		case events.JobCompleted:
			w.writeTOC(b)
			refused, err := w.completeSync(ctx, i, b, e)
			if err != nil {
				return book{}, err
			}
			if refused != nil {
				return b, w.recordJob(i, b, refusedJob(e, refused))
			}
			return b, w.recordJob(i, b, e)
		case events.JobFailed, events.JobSkipped:
			return book{}, w.recordJob(i, b, e)
		}
		return book{}, nil // started, retrying: history keeps finished jobs only
	}
	return book{}, fmt.Errorf("unsupported payload %T", ev)
}

// settle queues what a batch's pages say about each book once all of them are written:
// the page count the newest page reported and the position of the newest chapter, once
// per book and batch rather than once per page (a sync's pages arrive together). Then
// it queues the read of the books' states and sends everything, and then the metadata
// restores of the last pages that turned out refused (see restoreRefused).
func (w *writer) settle(ctx context.Context, touched []book) ([]BookState, error) {
	for _, b := range touched {
		w.settleTOC(b)
	}
	var states []BookState
	if len(touched) > 0 {
		sites, ids := bookStatesArgs(touched)
		w.query(-1, "book states", func(rows pgx.Rows) error {
			var err error
			states, err = scanBookStates(rows)
			return err
		}, bookStatesSQL, sites, ids)
	}
	_, err := w.flush(ctx)
	if err == nil && w.restored < len(w.refused) {
		// Last pages refused by the statements just sent, without their completion (a
		// page fetched out of turn for a reader, or a completion still to come): their
		// metadata goes back too. That changes nothing the states read.
		w.restoreRefused()
		_, err = w.flush(ctx)
	}
	// Pages are refused when their statement runs, after later completions maybe.
	slices.SortStableFunc(w.refused, func(a, b Refusal) int { return cmp.Compare(a.Event, b.Event) })
	return states, err
}

// settleTOC queues what the batch's pages of book b so far say about it (see settle),
// and forgets them.
func (w *writer) settleTOC(b book) {
	t := w.toc[b]
	if t == nil {
		return
	}
	w.writeTOC(b)
	w.putTOCPagesSeen(t.last, b, t.newest)
	w.refreshLastChapter(t.last, b)
	delete(w.toc, b)
}

// settleBook writes everything the batch's events so far say about book b, as a batch
// of their own would, before an event that changes how they are judged: its pages are
// settled, then the metadata of the last pages refused is put back.
func (w *writer) settleBook(ctx context.Context, b book) error {
	w.settleTOC(b)
	if _, err := w.flush(ctx); err != nil {
		return err
	}
	w.restoreRefused()
	return nil
}

// tocBook is what a batch's table-of-contents pages of one book leave to write: refs
// not written yet, the newest page (for the page count it reported) and the index of
// the book's last page event.
type tocBook struct {
	refs   tocRefs
	newest *events.TOCPageFetched
	last   int
}

// tocRefs are chapter refs of one book to write in one statement, column by column
// (the arrays of an unnest), at most one per chapter number.
type tocRefs struct {
	nums      []int32
	ids       []string
	titles    []string
	urls      []string
	titleNums []*int32
	listedAt  []time.Time
	pages     []int32
	// listed is, on the refs of the last page of a sync, the sync's chapter count
	// (listedBy): they are written unless that count is refused by the rule of
	// ShrinkFloor. Nil on the refs of the pages before the last.
	listed []*int32
	// event maps each chapter number to the index of the page event that listed it,
	// jobs each of those indexes to the page's job.
	event map[int32]int
	jobs  map[int]string
}

// putTOCPage adds a page's refs to its book's pending statement. A page listing a
// chapter number the pending refs already hold (the same page redelivered, or two
// syncs' pages in one batch) first has those written, so that the refs of each number
// are applied in the order of the events, each against what the previous one left.
func (w *writer) putTOCPage(i int, bk book, e *events.TOCPageFetched) error {
	b := w.toc[bk]
	if b == nil {
		b = &tocBook{}
		w.toc[bk] = b
	}
	if b.refs.overlaps(e.Chapters) {
		w.writeTOC(bk)
	}
	if len(e.Chapters) == 0 && listedBy(e) != nil {
		// An empty list on one page writes no ref, so tocSQL cannot refuse it.
		w.writeTOC(bk)
		w.judgeEmptyList(i, bk, e)
	}
	// On error the whole batch fails: the refs added so far are never written.
	if err := b.refs.add(i, e); err != nil {
		return err
	}
	b.last = i
	if b.newest == nil || !e.FetchedAt.Before(b.newest.FetchedAt) {
		b.newest = e
	}
	if !w.merge {
		w.writeTOC(bk)
	}
	return nil
}

// judgeEmptyList queues the verdict on page event i, an empty list of one page (which
// writes nothing), by the rule of ShrinkFloor: refused when the book has held chapters,
// so that the metadata of its job is put back (see restoreRefused).
func (w *writer) judgeEmptyList(i int, bk book, e *events.TOCPageFetched) {
	w.query(i, "judge the empty toc of book "+bk.String(), func(rows pgx.Rows) error {
		var stored, peak int32
		var refused bool
		_, err := pgx.ForEachRow(rows, []any{&stored, &peak, &refused}, func() error {
			if refused {
				w.refused = append(w.refused, Refusal{Event: i, Site: bk.site, BookID: bk.id, JobID: e.JobID,
					Stored: int(stored), Peak: int(peak)})
			}
			return nil
		})
		return err
	}, `SELECT c.stored, c.peak, `+refusedSQL("0", "c")+` FROM (`+countsSQL+`) c`, bk.site, bk.id)
}

// overlaps reports whether refs list a chapter number r holds.
func (r *tocRefs) overlaps(refs []events.ChapterRef) bool {
	if len(r.event) == 0 {
		return false
	}
	for _, c := range refs {
		if _, ok := r.event[int32(c.Number)]; ok {
			return true
		}
	}
	return false
}

// add checks the refs of page event i, which lists none of r's numbers, and appends
// them to r: the last ref of a repeated number only (one statement cannot update a row
// twice).
func (r *tocRefs) add(i int, e *events.TOCPageFetched) error {
	last := lastOfEach(e.Chapters)
	listed := listedBy(e)
	if r.event == nil {
		r.event = make(map[int32]int, len(e.Chapters))
		r.jobs = make(map[int]string)
	}
	r.jobs[i] = e.JobID
	for k, c := range e.Chapters {
		if last != nil && last[c.Number] != k {
			continue
		}
		if err := int32s(c.Number); err != nil {
			return fmt.Errorf("chapter number: %w", err)
		}
		if err := chapterID(c.ChapterID); err != nil {
			return err
		}
		var tn *int32
		if c.TitleNumber != nil {
			if err := int32s(*c.TitleNumber); err != nil {
				return fmt.Errorf("title number: %w", err)
			}
			v := int32(*c.TitleNumber)
			tn = &v
		}
		r.nums = append(r.nums, int32(c.Number))
		r.ids = append(r.ids, c.ChapterID)
		r.titles = append(r.titles, c.Title)
		r.urls = append(r.urls, c.URL)
		r.titleNums = append(r.titleNums, tn)
		r.listedAt = append(r.listedAt, e.FetchedAt)
		r.pages = append(r.pages, int32(e.Page))
		r.listed = append(r.listed, listed)
		r.event[int32(c.Number)] = i
	}
	if err := int32s(e.Page, e.TotalPages); err != nil {
		return fmt.Errorf("toc page: %w", err)
	}
	return nil
}

// lastOfEach maps each chapter number of refs to the position of its last ref, or
// returns nil when no number repeats (the numbers increase, as on every page the site
// serves).
func lastOfEach(refs []events.ChapterRef) map[int]int {
	increasing := true
	for k := 1; k < len(refs) && increasing; k++ {
		increasing = refs[k-1].Number < refs[k].Number
	}
	if increasing {
		return nil
	}
	last := make(map[int]int, len(refs))
	for k, c := range refs {
		last[c.Number] = k
	}
	return last
}

// writeTOC queues the upsert of a book's pending refs, if any.
func (w *writer) writeTOC(bk book) {
	b := w.toc[bk]
	if b == nil || len(b.refs.nums) == 0 {
		return
	}
	r := b.refs
	b.refs = tocRefs{} // the queue holds r's slices until it is sent
	w.query(b.last, "upsert toc pages of book "+bk.String(), w.readTOC(bk, r), tocSQL,
		bk.site, bk.id, r.nums, r.ids, r.titles, r.urls, r.titleNums, r.listedAt, r.pages, r.listed)
}

// readTOC returns the reader of the statement's rows: each changed chapter number counts
// for the page that listed it; each refused page is added to the batch's refusals.
func (w *writer) readTOC(bk book, r tocRefs) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var num, listed, stored, peak int32
		var refused bool
		_, err := pgx.ForEachRow(rows, []any{&num, &refused, &listed, &stored, &peak}, func() error {
			i := r.event[num]
			if !refused {
				w.changed[i]++
				return nil
			}
			w.refused = append(w.refused, Refusal{Event: i, Site: bk.site, BookID: bk.id, JobID: r.jobs[i],
				Listed: int(listed), Stored: int(stored), Peak: int(peak)})
			return nil
		})
		return err
	}
}

// tocSQL upserts a book's refs. A ref whose chapter id changed loses its stored text; a
// ref already listed by a newer page is left alone; the refs of a last page whose
// sync's chapter count is refused by the rule of ShrinkFloor are not written (the book's
// stored chapters are counted only when some ref carries a count). It returns the
// numbers it changed (refused false), then, for each refused page, its first number,
// the count its sync listed, the chapters stored and the most the book has held
// (refused true).
var tocSQL = `
WITH r AS (
    SELECT * FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::int[], $8::timestamptz[], $9::int[], $10::int[])
        AS r(num, chapter_id, title, url, title_num, listed_at, toc_page, listed)
), v AS (
    SELECT r.*, CASE WHEN r.listed IS NULL THEN false
                     ELSE ` + refusedForBookSQL("r.listed") + ` END AS refused
    FROM r
), ins AS (
INSERT INTO chapters AS c (site, book_id, num, chapter_id, title, url, title_num, listed_at, toc_page)
SELECT $1, $2, v.num, v.chapter_id, v.title, v.url, v.title_num, v.listed_at, v.toc_page
FROM v WHERE NOT v.refused
ON CONFLICT (site, book_id, num) DO UPDATE SET
    chapter_id = EXCLUDED.chapter_id,
    title = EXCLUDED.title,
    url = EXCLUDED.url,
    title_num = EXCLUDED.title_num,
    listed_at = EXCLUDED.listed_at,
    toc_page = EXCLUDED.toc_page,
    text = CASE WHEN c.chapter_id = EXCLUDED.chapter_id THEN c.text END,
    fetched_at = CASE WHEN c.chapter_id = EXCLUDED.chapter_id THEN c.fetched_at END,
    updated_at = CASE
        WHEN (c.chapter_id, c.title, c.url, c.title_num)
          IS DISTINCT FROM (EXCLUDED.chapter_id, EXCLUDED.title, EXCLUDED.url, EXCLUDED.title_num)
        THEN now() ELSE c.updated_at END
WHERE (c.listed_at IS NULL OR c.listed_at <= EXCLUDED.listed_at)
  AND (c.chapter_id, c.title, c.url, c.title_num, c.listed_at, c.toc_page)
      IS DISTINCT FROM
      (EXCLUDED.chapter_id, EXCLUDED.title, EXCLUDED.url, EXCLUDED.title_num, EXCLUDED.listed_at, EXCLUDED.toc_page)
RETURNING c.num
)
SELECT num, false, 0, 0, 0 FROM ins
UNION ALL
SELECT min(v.num), true, max(v.listed), c.stored, c.peak
FROM v CROSS JOIN (` + countsSQL + `) c WHERE v.refused GROUP BY v.toc_page, v.listed_at, c.stored, c.peak`
