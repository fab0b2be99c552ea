package httpapi

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xswtw/xsw/events"
)

// listingAnswer makes the test fetcher answer every listing call with one book, slowly
// enough for readers to ask at once, counting the calls.
func listingAnswer(e *env, delay time.Duration) *atomic.Int32 {
	var n atomic.Int32
	e.serve(events.SubjectRPCListing, func(data []byte) events.Payload {
		n.Add(1)
		time.Sleep(delay)
		id := "1000001"
		return &events.ListingReply{Header: events.Header{Version: events.Version},
			Books: []events.ListingBook{{BookID: id, Name: "書", BookURL: "https://m.xsw.tw/" + id + "/"}}}
	})
	return &n
}

// TestConcurrentReadersShareOneListingCall: twenty readers asking for the same uncached
// listing page at once cost the site one request, through one call to the fetchers.
func TestConcurrentReadersShareOneListingCall(t *testing.T) {
	e := newEnv(t)
	calls := listingAnswer(e, 150*time.Millisecond)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.get("/xsw/api/categories/1/books?page=3&bg_sync=false")
			if r.status != http.StatusOK {
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d listing calls for twenty readers of one page, want 1", n)
	}
}

// TestSourceShareIsPerClient: a client may cause API_SOURCE_RATE_LIMIT requests to the
// site a minute, apart from its API limit; past it the answer is 429 with Retry-After and
// nothing reaches the fetchers, while another client still gets its share and what is
// cached is served to everyone.
func TestSourceShareIsPerClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	calls := listingAnswer(e, 0)
	as := func(client string, page int) response {
		return e.request(http.MethodGet, "/xsw/api/categories/1/books?bg_sync=false&page="+strconv.Itoa(page), "X-Forwarded-For", client)
	}
	for page := 1; page <= 3; page++ {
		expect(t, as("203.0.113.7", page), http.StatusOK)
	}
	r := as("203.0.113.7", 4)
	expect(t, r, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls reached the fetchers, want the client's 3", n)
	}
	expect(t, as("203.0.113.7", 2), http.StatusOK) // cached: served, not charged
	expect(t, as("198.51.100.9", 4), http.StatusOK)
	if n := calls.Load(); n != 4 {
		t.Errorf("%d calls after another client's, want 4", n)
	}
}

// TestSourceShareChargesQueuedBooksOnly: a reader polling a book it asked for, which is
// queued already, spends nothing more of its share; each new book queued spends one.
func TestSourceShareChargesQueuedBooksOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 2
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	get := func(id string) response {
		return e.request(http.MethodGet, "/xsw/api/books/"+id, "X-Forwarded-For", "203.0.113.7")
	}
	for range 3 {
		expect(t, get("1000001"), http.StatusAccepted) // queued once, then already queued
	}
	expect(t, get("1000002"), http.StatusAccepted)
	r := get("1000003")
	expect(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// TestSourceShareHoldsForConcurrentReaders: twenty reads at once of twenty books not
// stored, from one client with a share of three: three are queued, the others refused,
// however they interleave.
func TestSourceShareHoldsForConcurrentReaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.request(http.MethodGet, "/xsw/api/books/"+strconv.Itoa(1000001+i), "X-Forwarded-For", "203.0.113.7")
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusAccepted] != 3 || statuses[http.StatusTooManyRequests] != 17 {
		t.Errorf("statuses %v, want 3 queued (202) and 17 refused (429)", statuses)
	}
}
