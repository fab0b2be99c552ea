package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// TOCLayout is how the source site pages a book's table of contents, as far as the
// stored refs tell.
type TOCLayout struct {
	// PerPage is how many refs the source's first table-of-contents page listed: every
	// page but the last holds that many (0: page 1 is not stored).
	PerPage int
	// Pages is the page count the newest stored page reported, else that of the last
	// completed sync (0: unknown).
	Pages int
}

// TOCLayout reads the book's table-of-contents layout.
func (c *Catalog) TOCLayout(ctx context.Context, bookID string) (TOCLayout, error) {
	id, err := parseID(bookID)
	if err != nil {
		return TOCLayout{}, err
	}
	var l TOCLayout
	err = c.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM chapters WHERE book_id = $1 AND toc_page = 1),
		       COALESCE((SELECT COALESCE(toc_pages_seen, toc_pages) FROM books WHERE id = $1), 0)`,
		id).Scan(&l.PerPage, &l.Pages)
	if err != nil {
		return TOCLayout{}, fmt.Errorf("table of contents layout of book %s: %w", bookID, err)
	}
	return l, nil
}

// Texts counts the book's chapters whose text is stored and was fetched no later than
// upTo (a text without a fetch time counts too).
func (c *Catalog) Texts(ctx context.Context, bookID string, upTo time.Time) (int, error) {
	id, err := parseID(bookID)
	if err != nil {
		return 0, err
	}
	var n int
	err = c.pool.QueryRow(ctx, `
		SELECT count(*) FROM chapters
		WHERE book_id = $1 AND text IS NOT NULL AND (fetched_at IS NULL OR fetched_at <= $2)`, id, upTo).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count chapter texts of book %s: %w", bookID, err)
	}
	return n, nil
}

// StoredTOCPages reports which of the given source pages have refs stored (a page once
// stored lists what the site listed: numbers it lacks are past the book's end).
func (c *Catalog) StoredTOCPages(ctx context.Context, bookID string, pages []int) (map[int]bool, error) {
	id, err := parseID(bookID)
	if err != nil {
		return nil, err
	}
	ps := make([]int32, len(pages))
	for i, p := range pages {
		ps[i] = int32(p)
	}
	rows, err := c.pool.Query(ctx, `
		SELECT DISTINCT toc_page FROM chapters WHERE book_id = $1 AND toc_page = ANY($2)`, id, ps)
	if err != nil {
		return nil, fmt.Errorf("stored toc pages of book %s: %w", bookID, err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("stored toc pages of book %s: %w", bookID, err)
	}
	out := make(map[int]bool, len(stored))
	for _, p := range stored {
		out[p] = true
	}
	return out, nil
}
