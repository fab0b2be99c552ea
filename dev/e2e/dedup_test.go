package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xswtw/xsw/dev/sitesim"
	"github.com/xswtw/xsw/platform/testkit"
)

// TestFiftyConcurrentSyncRequestsCauseOneSync fires 50 admin sync requests for one book
// at once and counts what reaches the site: exactly one sync (its home page and each
// table-of-contents page once).
func TestFiftyConcurrentSyncRequestsCauseOneSync(t *testing.T) {
	t.Parallel()
	cfg := sitesim.DefaultConfig()
	cfg.Categories, cfg.BooksPerCategory = 1, 3
	cfg.MinChapters, cfg.MaxChapters = 60, 60
	cfg.Latency = 20 * time.Millisecond
	s := start(t, cfg, nil)
	book := s.Site.Books()[0]

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var answer struct {
				Status string `json:"status"`
			}
			code := s.post(t, "/xsw/api/admin/jobs/sync/"+book.ID+"?priority=10", &answer)
			mu.Lock()
			statuses[fmt.Sprintf("%d %s", code, answer.Status)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses["200 queued"] != 1 {
		t.Errorf("answers %v, want exactly one queued", statuses)
	}
	for k := range statuses {
		switch k {
		case "200 queued", "200 already_queued", "200 already_syncing", "200 recently_synced":
		default:
			t.Errorf("unexpected answer %q", k)
		}
	}
	testkit.Eventually(t, 30*time.Second, "the book synced", func() bool {
		return len(incomplete(t, s.db, map[string]int{book.ID: book.ChapterCount})) == 0
	})
	// Nothing else is on its way: wait past any stray job's start, then count.
	time.Sleep(500 * time.Millisecond)
	home := 0
	toc := 0
	for _, r := range s.Site.Requests() {
		switch {
		case r.Path == "/"+book.ID+"/":
			home++
		case len(r.Path) > len(book.ID)+7 && r.Path[:len(book.ID)+7] == "/"+book.ID+"/page-":
			toc++
		}
	}
	if home != 1 || toc != book.TOCPages {
		t.Errorf("site saw %d home and %d table-of-contents requests for the book, want 1 and %d", home, toc, book.TOCPages)
	}
	t.Logf("50 concurrent sync requests: answers %v; site requests %d (1 home + %d toc pages)", statuses, home+toc, toc)
}
