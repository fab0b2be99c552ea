package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/gateway/internal/testdb"
)

func categoriesReply(cats ...events.Category) *events.CategoriesReply {
	return &events.CategoriesReply{Header: events.Header{Version: events.Version}, Categories: cats}
}

func rpcErr(kind events.ErrorKind) *events.RPCError {
	return &events.RPCError{Kind: kind, Message: "test says " + string(kind)}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.serve(events.SubjectRPCCategories, func([]byte) events.Payload {
		calls.Add(1)
		return categoriesReply(
			events.Category{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"},
			events.Category{ID: "2", Name: "修真小說", URL: "https://m.xsw.tw/fenlei2_1.html"})
	})
	for range 2 {
		r := e.get("/xsw/api/categories")
		expect(t, r, http.StatusOK)
		var got []map[string]any
		r.decode(t, &got)
		want := []map[string]any{
			{"id": "1", "name": "玄幻小說", "url": "https://m.xsw.tw/fenlei1_1.html"},
			{"id": "2", "name": "修真小說", "url": "https://m.xsw.tw/fenlei2_1.html"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("categories = %s", r.body)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("fetchers asked %d times for two calls, want 1 (cached)", n)
	}
}

func TestCategoriesFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     func([]byte) events.Payload // nil: no fetcher at all
		storedRows bool
		want       int
	}{
		{"source error, table filled", func([]byte) events.Payload {
			return &events.CategoriesReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindSource)}
		}, true, http.StatusOK},
		{"no fetcher, table filled", nil, true, http.StatusOK},
		{"source error", func([]byte) events.Payload {
			return &events.CategoriesReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindSource)}
		}, false, http.StatusBadGateway},
		{"parse error", func([]byte) events.Payload {
			return &events.CategoriesReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindParse)}
		}, false, http.StatusBadGateway},
		{"source timeout", func([]byte) events.Payload {
			return &events.CategoriesReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindTimeout)}
		}, false, http.StatusGatewayTimeout},
		{"no reply in time", func([]byte) events.Payload { return nil }, false, http.StatusGatewayTimeout},
		{"empty list", func([]byte) events.Payload { return categoriesReply() }, false, http.StatusBadGateway},
		{"no fetcher", nil, false, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.answer != nil {
				e.serve(events.SubjectRPCCategories, tt.answer)
			}
			if tt.storedRows {
				testdb.Exec(t, e.pool, `INSERT INTO categories (site, id, name, url) VALUES ('xsw', '1', '玄幻小說', 'https://m.xsw.tw/fenlei1_1.html')`)
			}
			r := e.get("/xsw/api/categories")
			expect(t, r, tt.want)
			if tt.want != http.StatusOK {
				if r.detail(t) == "" {
					t.Error("empty detail")
				}
				return
			}
			var got []api.Category
			r.decode(t, &got)
			if len(got) != 1 || got[0] != (api.Category{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"}) {
				t.Errorf("stored categories = %s", r.body)
			}
		})
	}
}

// listed returns n listed books with ids 1000001.. and one book without an id.
func listed(n int) []events.ListingBook {
	var books []events.ListingBook
	for i := 1; i <= n; i++ {
		id := fmt.Sprint(1000000 + i)
		books = append(books, events.ListingBook{BookID: id, Name: "書" + id, Author: "作者", LastChapterTitle: "第9章",
			LastChapterURL: "https://m.xsw.tw/" + id + "/9.html", Intro: "簡介", BookURL: "https://m.xsw.tw/" + id + "/"})
	}
	return append(books, events.ListingBook{Name: "無號", BookURL: "https://m.xsw.tw/x/"})
}

func (e *env) serveListing(books []events.ListingBook, calls *atomic.Int32) {
	e.serve(events.SubjectRPCListing, func(data []byte) events.Payload {
		var req events.ListingRequest
		if err := events.Decode(data, &req); err != nil {
			return &events.ListingReply{Header: events.Header{Version: events.Version}, Error: &events.RPCError{Kind: events.ErrKindBadRequest, Message: err.Error()}}
		}
		if calls != nil {
			calls.Add(1)
		}
		return &events.ListingReply{Header: events.Header{Version: events.Version}, Books: books}
	})
}

// TestListingAnswersBeforeQueueing checks the listing's shape, that it answers while the
// background publishes are held, and that one prefetch request per listed book is stored
// once they run.
func TestListingAnswersBeforeQueueing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.serveListing(listed(20), nil)
	gate := make(chan struct{})
	e.srv.prefetchGate = gate

	r := e.get("/xsw/api/categories/1/books?page=2")
	expect(t, r, http.StatusOK)
	var raw []map[string]any
	r.decode(t, &raw)
	if len(raw) != 21 {
		t.Fatalf("%d books listed, want 21", len(raw))
	}
	wantKeys := []string{"author", "book_id", "bookname", "bookurl", "intro", "lastchapter", "lasturl", "site"}
	for i, b := range raw {
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range b {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, wantKeys) {
			t.Fatalf("book %d has keys %v, want %v", i, got, wantKeys)
		}
	}
	if raw[0]["book_id"] != "1000001" || raw[0]["site"] != "xsw" || raw[0]["bookname"] != "書1000001" || raw[0]["lastchapter"] != "第9章" ||
		raw[0]["lasturl"] != "https://m.xsw.tw/1000001/9.html" || raw[0]["bookurl"] != "https://m.xsw.tw/1000001/" {
		t.Errorf("first book = %v", raw[0])
	}
	if raw[20]["book_id"] != nil {
		t.Errorf("book without id has book_id %v, want null", raw[20]["book_id"])
	}

	if n := e.stored(); n != 0 {
		t.Fatalf("%d requests stored while the background publishes were held", n)
	}
	close(gate)
	testkit.Eventually(t, 10*time.Second, "20 prefetch requests", func() bool { return e.stored() == 20 })
	for i := 1; i <= 20; i++ {
		id := fmt.Sprint(1000000 + i)
		req, ok := e.waiting(id)[events.LanePrefetch]
		if !ok || req.Reason != "category 1 page 2" || req.Priority != events.PrefetchPriority {
			t.Errorf("book %s: prefetch request %+v (found %v)", id, req, ok)
		}
		if line := "[BackgroundJobManager] Queued sync job for book " + id; !strings.Contains(e.logs.String(), line) {
			t.Errorf("log lacks %q", line)
		}
	}

	// Listing the page again queues nothing new: every book already waits.
	expect(t, e.get("/xsw/api/categories/1/books?page=2"), http.StatusOK)
	if err := e.srv.Shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := e.stored(); n != 20 {
		t.Errorf("%d requests stored after listing twice, want 20", n)
	}
}

func TestListingWithoutBackgroundSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.serveListing(listed(5), &calls)
	for _, v := range []string{"false", "0"} {
		expect(t, e.get("/xsw/api/categories/3/books?bg_sync="+v), http.StatusOK)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("fetchers asked %d times for one page, want 1 (cached)", n)
	}
	if err := e.srv.Shutdown(5 * time.Second); err != nil { // waits for any background work
		t.Fatal(err)
	}
	if n := e.stored(); n != 0 {
		t.Errorf("bg_sync=false stored %d requests", n)
	}
}

func TestListingErrors(t *testing.T) {
	t.Parallel()
	reply := func(kind events.ErrorKind) func([]byte) events.Payload {
		return func([]byte) events.Payload {
			return &events.ListingReply{Header: events.Header{Version: events.Version}, Error: rpcErr(kind)}
		}
	}
	tests := []struct {
		name   string
		path   string
		answer func([]byte) events.Payload
		want   int
	}{
		{"category 0", "/xsw/api/categories/0/books", nil, http.StatusBadRequest},
		{"category 100", "/xsw/api/categories/100/books", nil, http.StatusBadRequest},
		{"category not a number", "/xsw/api/categories/abc/books", nil, http.StatusBadRequest},
		{"page 0", "/xsw/api/categories/1/books?page=0", nil, http.StatusBadRequest},
		{"page too far", "/xsw/api/categories/1/books?page=10001", nil, http.StatusBadRequest},
		{"page not a number", "/xsw/api/categories/1/books?page=two", nil, http.StatusBadRequest},
		{"bad bg_sync", "/xsw/api/categories/1/books?bg_sync=maybe", nil, http.StatusBadRequest},
		{"no such page", "/xsw/api/categories/1/books", reply(events.ErrKindNotFound), http.StatusNotFound},
		{"source failed", "/xsw/api/categories/1/books", reply(events.ErrKindSource), http.StatusBadGateway},
		{"page unreadable", "/xsw/api/categories/1/books", reply(events.ErrKindParse), http.StatusBadGateway},
		{"circuit open", "/xsw/api/categories/1/books", reply(events.ErrKindCircuit), http.StatusBadGateway},
		{"source timed out", "/xsw/api/categories/1/books", reply(events.ErrKindTimeout), http.StatusGatewayTimeout},
		{"no reply in time", "/xsw/api/categories/1/books", func([]byte) events.Payload { return nil }, http.StatusGatewayTimeout},
		{"no fetcher", "/xsw/api/categories/1/books", nil, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.answer != nil {
				e.serve(events.SubjectRPCListing, tt.answer)
			}
			r := e.get(tt.path)
			expect(t, r, tt.want)
			if r.detail(t) == "" {
				t.Error("empty detail")
			}
		})
	}
}

// TestShutdownWaitsForPrefetch checks that Shutdown waits for background publishes to
// complete, and cuts them short at its timeout.
func TestShutdownWaitsForPrefetch(t *testing.T) {
	t.Parallel()
	t.Run("completes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.serveListing(listed(4), nil)
		gate := make(chan struct{})
		e.srv.prefetchGate = gate
		expect(t, e.get("/xsw/api/categories/1/books"), http.StatusOK)
		done := make(chan error, 1)
		go func() { done <- e.srv.Shutdown(10 * time.Second) }()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned (%v) while a publish was pending", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := e.stored(); n != 4 {
			t.Errorf("%d requests stored by shutdown's end, want 4", n)
		}
		// After shutdown no new background work starts.
		if e.srv.background(func(context.Context) { t.Error("background work ran after Shutdown") }) {
			t.Error("background accepted work after Shutdown")
		}
	})
	t.Run("cut short", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.serveListing(listed(4), nil)
		e.srv.prefetchGate = make(chan struct{}) // never opens
		expect(t, e.get("/xsw/api/categories/1/books"), http.StatusOK)
		if err := e.srv.Shutdown(100 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if n := e.stored(); n != 0 {
			t.Errorf("%d requests stored, want 0", n)
		}
	})
}

// TestBusyAnswerCarriesTheFetchersRetryAfter: a fetcher that turns a call away because
// the site's budget is booked too far ahead says when to ask again; the reader's
// Retry-After is that, in whole seconds from 1 to 60, or 10 when the fetcher does not
// say. A call turned away asked nothing of the site: it costs the client none of its
// share, so each of a client's busy answers is a 503, never a 429.
func TestBusyAnswerCarriesTheFetchersRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	// The listing page asked for is the case: its fetcher's retry-after.
	retryAfter := []float64{1: 3, 2: 2.2, 3: 0.2, 4: 500, 5: 0}
	e.serve(events.SubjectRPCListing, func(data []byte) events.Payload {
		var req events.ListingRequest
		if err := events.Decode(data, &req); err != nil || req.Page >= len(retryAfter) {
			return &events.ListingReply{Header: events.Header{Version: events.Version}, Error: rpcErr(events.ErrKindBadRequest)}
		}
		return &events.ListingReply{Header: events.Header{Version: events.Version},
			Error: &events.RPCError{Kind: events.ErrKindBusy, Message: "budget taken", RetryAfter: retryAfter[req.Page]}}
	})
	for _, tt := range []struct {
		name string
		page int
		want string
	}{
		{"fetcher's", 1, "3"},
		{"rounded up", 2, "3"},
		{"at least a second", 3, "1"},
		{"at most a minute", 4, "60"},
		{"not said", 5, "10"},
	} {
		r := e.request(http.MethodGet, fmt.Sprintf("/xsw/api/categories/1/books?bg_sync=false&page=%d", tt.page), "X-Forwarded-For", "203.0.113.7")
		expect(t, r, http.StatusServiceUnavailable)
		if got := r.header.Get("Retry-After"); got != tt.want {
			t.Errorf("%s: Retry-After %q, want %q", tt.name, got, tt.want)
		}
	}
}
