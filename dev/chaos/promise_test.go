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

// bookState reads the database's account of book id and compares it with the site's.
func (r *rig) bookState(ctx context.Context, id string) (state, error) {
	truth, ok := r.site.books[id]
	if !ok {
		return state{}, fmt.Errorf("book %s is not on the site", id)
	}
	var st state
	var name string
	var total *int
	err := r.db.QueryRow(ctx, `SELECT name, chapter_total FROM books WHERE site = 'xsw' AND id = $1`, id).Scan(&name, &total)
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
	rows, err := r.db.Query(ctx, `SELECT num, chapter_id FROM chapters WHERE site = 'xsw' AND book_id = $1 ORDER BY num`, id)
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
		FROM job_history WHERE site = 'xsw' AND book_id = $1`, id).Scan(&st.jobs, &st.failed)
	return st, err
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// settle waits until every book of ids is fully indexed or recorded as failed, then
// checks the promise: an indexed book has exactly one job in its history, a failed one
// a reason. It returns the failed books and their reasons.
func (r *rig) settle(t *testing.T, ids []string, timeout time.Duration) map[string]string {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		var open []string
		states := map[string]state{}
		for _, id := range ids {
			st, err := r.bookState(ctx, id)
			if err != nil {
				open = append(open, id+": "+err.Error())
				continue
			}
			states[id] = st
			if !st.indexed && st.failed == "" {
				open = append(open, id+": "+st.detail)
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
				timeout, len(open), len(ids), strings.Join(open, "\n  "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *rig) checkSettled(t *testing.T, states map[string]state) map[string]string {
	t.Helper()
	failed := map[string]string{}
	for id, st := range states {
		switch {
		case st.indexed && st.jobs != 1:
			t.Errorf("book %s: indexed with %d jobs in its history, want 1 (done twice?)", id, st.jobs)
		case !st.indexed:
			failed[id] = st.failed
		}
	}
	return failed
}

// settleAll is settle where every book must end fully indexed.
func (r *rig) settleAll(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	if failed := r.settle(t, ids, timeout); len(failed) > 0 {
		t.Errorf("%d books failed, want all indexed: %v", len(failed), failed)
	}
}
