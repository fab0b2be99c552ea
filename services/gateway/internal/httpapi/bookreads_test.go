package httpapi

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/metrics"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

// readCounts gathers xsw_gateway_book_reads_total from reg, by "site/served_from",
// leaving out the series still at zero.
func readCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "xsw_gateway_book_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if v := m.GetCounter().GetValue(); v != 0 {
				out[labels["site"]+"/"+labels["served_from"]] = v
			}
		}
	}
	return out
}

// TestBookReadsCountedByOutcome reads books and chapter lists in every way a read can
// end, and checks after each that it was counted once, under its site and where it was
// served from; reads that are not book reads are not counted.
func TestBookReadsCountedByOutcome(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reads, err := metrics.NewReads(reg, []string{"xsw", "toy"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.InteractiveWait = 2 * time.Second
		c.ObserveRead = reads.Read
	})
	testdb.InsertBook(t, e.pool, "1721851", "萬古神帝", true)
	testdb.InsertChapters(t, e.pool, "1721851", 3)
	testdb.InsertSiteBook(t, e.pool, "toy", "ab1", "存書", true)
	testdb.InsertSiteChapters(t, e.pool, "toy", "ab1", 3)
	testdb.Exec(t, e.pool, `INSERT INTO job_history (job_id, site, book_id, lane, status, finished_at, error, permanent)
		VALUES ('xsw.404-1', 'xsw', '404', 'prefetch', 'failed', now(), $1, true)`, fetcherError)
	partialBook(t, e, "50", 40, 5)
	refs := &refsSite{total: 100, silent: map[int]bool{81: true}, failing: map[int]events.ErrorKind{41: events.ErrKindNotFound}}
	e.serve(events.SubjectRPCRefs, refs.answer)
	// Books 555 and 556 come while their reader waits, as the fetcher and indexer bring
	// them.
	e.onRequest("555", func() {
		e.exec(insertBookSQL, "555", "等待之書")
		e.publishIndexed("555", 0, false)
	})
	e.onRequest("556", func() {
		e.exec(insertBookSQL, "556", "等待之目錄")
		e.exec(`INSERT INTO chapters (site, book_id, num, chapter_id, title, url) VALUES ('xsw', '556', 1, '1001', '第1章', 'u')`)
		e.publishIndexed("556", 1, false)
	})

	want := map[string]float64{}
	for _, step := range []struct {
		name, path string
		status     int
		counted    string // "site/served_from"; "" for a read that is not a book read
	}{
		{"stored book", "/xsw/api/books/1721851", http.StatusOK, "xsw/database"},
		{"cached book", "/xsw/api/books/1721851", http.StatusOK, "xsw/memory"},
		{"stored chapter list", "/xsw/api/books/1721851/chapters", http.StatusOK, "xsw/database"},
		{"cached chapter list", "/xsw/api/books/1721851/chapters", http.StatusOK, "xsw/memory"},
		{"chapter list bypassing the cache", "/xsw/api/books/1721851/chapters?nocache=true", http.StatusOK, "xsw/database"},
		{"another site's stored book", "/xsw/api/sites/toy/books/ab1", http.StatusOK, "toy/database"},
		{"book synced while its reader waits", "/xsw/api/books/555", http.StatusOK, "xsw/waited"},
		{"chapter list synced while its reader waits", "/xsw/api/books/556/chapters", http.StatusOK, "xsw/waited"},
		{"book not synced within the wait", "/xsw/api/books/777", http.StatusAccepted, "xsw/queued"},
		{"chapter list not synced within the wait", "/xsw/api/books/778/chapters", http.StatusAccepted, "xsw/queued"},
		{"book the source does not have", "/xsw/api/books/404", http.StatusNotFound, "xsw/failed"},
		{"partial book, stored page", "/xsw/api/books/50/chapters?page=2", http.StatusOK, "xsw/database"},
		{"partial book, page fetched out of turn", "/xsw/api/books/50/chapters?page=4", http.StatusOK, "xsw/waited"},
		{"partial book, page the source is slow to give", "/xsw/api/books/50/chapters?page=5", http.StatusAccepted, "xsw/queued"},
		{"partial book, page the source does not have", "/xsw/api/books/50/chapters?page=3", http.StatusNotFound, "xsw/failed"},
		{"bad book id", "/xsw/api/books/abc", http.StatusBadRequest, ""},
		{"bad page", "/xsw/api/books/1721851/chapters?page=0", http.StatusBadRequest, ""},
		{"chapter text", "/xsw/api/books/1721851/chapters/1", 0, ""},
	} {
		r := e.get(step.path)
		if step.status != 0 && r.status != step.status {
			t.Fatalf("%s: GET %s = %d, want %d; body %s", step.name, step.path, r.status, step.status, r.body)
		}
		if step.counted != "" {
			want[step.counted]++
		}
		if got := readCounts(t, reg); !maps.Equal(got, want) {
			t.Fatalf("after the %s: book reads %v, want %v", step.name, got, want)
		}
	}

	// A site that refuses us: a stored book is served as ever; one not stored is
	// answered 503 at once and queued for when the site lets us in again.
	probe := time.Now().Add(90 * time.Second).UTC()
	e.describe(events.SiteInfo{ID: "toy", Name: "Toy", BaseURL: "https://toy.example", BookIDPattern: toyBookPattern,
		RateInterval: 1, Interval: 1, State: events.SiteRefused, Detail: "toy: refused, HTTP 403", Until: &probe})
	testkit.Eventually(t, 10*time.Second, "toy refused", func() bool {
		st, _ := e.sites.Get(context.Background(), "toy")
		return st.State == events.SiteRefused
	})
	expect(t, e.get("/xsw/api/sites/toy/books/ab1/chapters?all=true"), http.StatusOK)
	want["toy/database"]++
	expect(t, e.get("/xsw/api/sites/toy/books/ab2"), http.StatusServiceUnavailable)
	want["toy/queued"]++
	if _, ok := e.waitingSite("toy", "ab2")[events.LaneInteractive]; !ok {
		t.Error("the book of the refusing site was not queued")
	}
	if got := readCounts(t, reg); !maps.Equal(got, want) {
		t.Fatalf("with the site refusing us: book reads %v, want %v", got, want)
	}
}

// TestConcurrentReadersEachCounted checks that readers sharing one wait for a book are
// each counted, as waited.
func TestConcurrentReadersEachCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	reads, err := metrics.NewReads(reg, []string{"xsw", "toy"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.InteractiveWait = 10 * time.Second
		c.ObserveRead = reads.Read
	})
	const readers = 4
	var started sync.WaitGroup
	started.Add(readers)
	e.onRequest("555", func() {
		// The book is stored only once every reader has asked and had time to find it
		// missing (each does so in milliseconds): a reader arriving after the store would
		// rightly be served from the database.
		started.Wait()
		time.Sleep(2 * time.Second)
		e.exec(insertBookSQL, "555", "等待之書")
		e.publishIndexed("555", 0, false)
	})
	done := make(chan response, readers)
	for range readers {
		go func() {
			started.Done()
			done <- e.get("/xsw/api/books/555")
		}()
	}
	for range readers {
		expect(t, <-done, http.StatusOK)
	}
	if got, want := readCounts(t, reg), map[string]float64{"xsw/waited": readers}; !maps.Equal(got, want) {
		t.Errorf("book reads %v, want %v", got, want)
	}
}
