package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/xswtw/xsw/events"
)

// StoredPages reports what is stored of a book's chapter list, by page of the list as
// the site delivered it (TOCPageFetched.Page): the pages whose refs are stored, how many
// refs page 1 held, and the page count the newest stored page reported (else that of the
// last completed sync). It is what a fetcher is told when asked for chapters out of
// turn, so that it fetches nothing twice; what a page means is the site's business. At
// most events.MaxStoredPages pages are listed, the first ones.
func (c *Catalog) StoredPages(ctx context.Context, site, bookID string) (events.StoredPages, error) {
	var p events.StoredPages
	err := c.pool.QueryRow(ctx, `
		SELECT COALESCE(array_agg(DISTINCT toc_page ORDER BY toc_page) FILTER (WHERE toc_page IS NOT NULL), '{}'),
		       count(*) FILTER (WHERE toc_page = 1),
		       COALESCE((SELECT COALESCE(toc_pages_seen, toc_pages) FROM books WHERE site = $1 AND id = $2), 0)
		FROM chapters WHERE site = $1 AND book_id = $2`, site, bookID).Scan(&p.Pages, &p.FirstPageRefs, &p.TotalPages)
	if err != nil {
		return events.StoredPages{}, fmt.Errorf("stored chapter list pages of book %s of site %s: %w", bookID, site, err)
	}
	if len(p.Pages) > events.MaxStoredPages {
		p.Pages = p.Pages[:events.MaxStoredPages]
	}
	if len(p.Pages) == 0 {
		p.Pages = nil
	}
	return p, nil
}

// Texts counts the book's chapters whose text is stored and was fetched no later than
// upTo (a text without a fetch time counts too).
func (c *Catalog) Texts(ctx context.Context, site, bookID string, upTo time.Time) (int, error) {
	var n int
	err := c.pool.QueryRow(ctx, `
		SELECT count(*) FROM chapters
		WHERE site = $1 AND book_id = $2 AND text IS NOT NULL AND (fetched_at IS NULL OR fetched_at <= $3)`,
		site, bookID, upTo).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count chapter texts of book %s of site %s: %w", bookID, site, err)
	}
	return n, nil
}
