package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// state is what the database holds of one requested book.
type state struct {
	indexed bool   // metadata and exactly the site's chapters, in order
	failed  string // the reason of a failed job, when one is recorded
	detail  string // why the book is not indexed, for the report
	jobs    int    // job history rows of the book
}

// book names a requested book: its site and its id there.
type book struct{ site, id string }

func (b book) String() string { return b.site + "/" + b.id }

// booksOf names the books ids of site.
func booksOf(site string, ids ...string) []book {
	out := make([]book, len(ids))
	for i, id := range ids {
		out[i] = book{site, id}
	}
	return out
}

// bookState reads the database's account of book b and compares it with its site's.
func (r *rig) bookState(ctx context.Context, b book) (state, error) {
	s, ok := r.sites[b.site]
	if !ok {
		return state{}, fmt.Errorf("book %s: the rig runs no site %s", b, b.site)
	}
	truth, ok := s.books[b.id]
	if !ok {
		return state{}, fmt.Errorf("book %s is not on the site", b)
	}
	var st state
	var name string
	var total *int
	err := r.db.QueryRow(ctx, `SELECT name, chapter_total FROM books WHERE site = $1 AND id = $2`, b.site, b.id).Scan(&name, &total)
	switch {
	case err != nil && strings.Contains(err.Error(), "no rows"):
		st.detail = "no metadata"
	case err != nil:
		return st, err
	case name != truth.Name:
		st.detail = fmt.Sprintf("name %q, want %q", name, truth.Name)
	case total == nil || *total != truth.ChapterCount:
		st.detail = fmt.Sprintf("chapter_total %v, want %d", deref(total), truth.ChapterCount)
	}
	rows, err := r.db.Query(ctx, `SELECT num, chapter_id FROM chapters WHERE site = $1 AND book_id = $2 ORDER BY num`, b.site, b.id)
	if err != nil {
		return st, err
	}
	var n int
	for rows.Next() {
		var num int
		var chapterID string
		if err := rows.Scan(&num, &chapterID); err != nil {
			rows.Close()
			return st, err
		}
		n++
		switch {
		case st.detail != "":
		case num != n:
			st.detail = fmt.Sprintf("chapter %d missing (next is %d)", n, num)
		case n > len(truth.Chapters):
			st.detail = fmt.Sprintf("chapter %d beyond the site's %d", n, len(truth.Chapters))
		case chapterID != truth.Chapters[n-1].ID:
			st.detail = fmt.Sprintf("chapter %d is %s, want %s", n, chapterID, truth.Chapters[n-1].ID)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	if st.detail == "" && n != truth.ChapterCount {
		st.detail = fmt.Sprintf("%d chapters, want %d", n, truth.ChapterCount)
	}
	st.indexed = st.detail == ""
	err = r.db.QueryRow(ctx, `
		SELECT count(*), coalesce(max(error) FILTER (WHERE status = 'failed'), '')
		FROM job_history WHERE site = $1 AND book_id = $2`, b.site, b.id).Scan(&st.jobs, &st.failed)
	return st, err
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// settle waits until every book of xsw with an id of ids is fully indexed or recorded
// as failed, then checks the promise (see settleBooks). It returns the failed books'
// reasons by id.
func (r *rig) settle(t *testing.T, ids []string, timeout time.Duration) map[string]string {
	t.Helper()
	failed := map[string]string{}
	for b, reason := range r.settleBooks(t, booksOf(siteXSW, ids...), timeout) {
		failed[b.id] = reason
	}
	return failed
}

// settleBooks waits until every book of books is fully indexed or recorded as failed,
// then checks the promise: an indexed book has exactly one job in its history, a failed
// one a reason. It returns the failed books and their reasons.
func (r *rig) settleBooks(t *testing.T, books []book, timeout time.Duration) map[book]string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		var open []string
		states := map[book]state{}
		for _, b := range books {
			st, err := r.bookState(ctx, b)
			if err != nil {
				open = append(open, b.String()+": "+err.Error())
				continue
			}
			states[b] = st
			if !st.indexed && st.failed == "" {
				open = append(open, b.String()+": "+st.detail)
			}
		}
		if len(open) == 0 {
			return r.checkSettled(t, states)
		}
		if time.Now().After(deadline) {
			sort.Strings(open)
			if len(open) > 10 {
				open = append(open[:10], fmt.Sprintf("… and %d more", len(open)-10))
			}
			t.Fatalf("after %v, %d of %d books are neither indexed nor failed (lost):\n  %s",
				timeout, len(open), len(books), strings.Join(open, "\n  "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *rig) checkSettled(t *testing.T, states map[book]state) map[book]string {
	t.Helper()
	failed := map[book]string{}
	for b, st := range states {
		switch {
		case st.indexed && st.jobs != 1:
			t.Errorf("book %s: indexed with %d jobs in its history, want 1 (done twice?)", b, st.jobs)
		case !st.indexed:
			failed[b] = st.failed
		}
	}
	return failed
}

// settleAll is settle where every book must end fully indexed.
func (r *rig) settleAll(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	r.settleAllBooks(t, booksOf(siteXSW, ids...), timeout)
}

// settleAllBooks is settleBooks where every book must end fully indexed.
func (r *rig) settleAllBooks(t *testing.T, books []book, timeout time.Duration) {
	t.Helper()
	if failed := r.settleBooks(t, books, timeout); len(failed) > 0 {
		t.Errorf("%d books failed, want all indexed: %v", len(failed), failed)
	}
}
