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

// sharedReads are the reads that concurrent readers share one call to the fetchers for:
// their path, another read of the same kind, and the call and its answer.
var sharedReads = []struct {
	name, path, another, subject string
	reply                        events.Payload
}{
	{"listing page", "/xsw/api/categories/1/books?page=3&bg_sync=false", "/xsw/api/categories/1/books?page=4&bg_sync=false",
		events.SubjectRPCListing, &events.ListingReply{Header: events.Header{Version: events.Version},
			Books: []events.ListingBook{{BookID: "1000001", Name: "書", BookURL: "https://m.xsw.tw/1000001/"}}}},
	{"categories", "/xsw/api/categories", "/xsw/api/sites/toy/categories", events.SubjectRPCCategories,
		categoriesReply(events.Category{ID: "1", Name: "玄幻小說", URL: "https://m.xsw.tw/fenlei1_1.html"})},
}

// answerAfter makes the test fetcher answer every call of subject with reply once hold
// returns, counting the calls.
func answerAfter(e *env, subject string, reply events.Payload, hold func()) *atomic.Int32 {
	var n atomic.Int32
	e.serve(subject, func([]byte) events.Payload {
		n.Add(1)
		hold()
		return reply
	})
	return &n
}

// TestConcurrentReadersShareOneListingCall: twenty readers asking for the same uncached
// listing page, or for the categories, at once cost the site one request, through one
// call to the fetchers.
func TestConcurrentReadersShareOneListingCall(t *testing.T) {
	for _, tt := range sharedReads {
		t.Run(tt.name, func(t *testing.T) {
			// The call outlasts a busy machine's scheduling: the count is what is tested.
			e := newEnv(t, func(c *Config) { c.RPCTimeout = 10 * time.Second })
			calls := answerAfter(e, tt.subject, tt.reply, func() { time.Sleep(150 * time.Millisecond) })
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := e.get(tt.path)
					if r.status != http.StatusOK {
						t.Errorf("status %d: %s", r.status, r.body)
					}
				}()
			}
			wg.Wait()
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls for twenty readers, want 1", n)
			}
		})
	}
}

// TestReaderAfterASharedCallCostsNoOther: a reader who found nothing cached while another
// reader's call ran, and joins only once that call has ended, is answered from what the
// call cached: no second call, and the reader's charge is given back.
func TestReaderAfterASharedCallCostsNoOther(t *testing.T) {
	for _, tt := range sharedReads {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) {
				c.SourceRateLimit = 1
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
			})
			// Once armed, the next charge stops in the share's clock until resumed: it is
			// made after the reader found nothing cached and before it joins a call.
			var armed atomic.Bool
			charging, resume := make(chan struct{}), make(chan struct{})
			e.srv.sourceLimiter.now = func() time.Time {
				if armed.CompareAndSwap(true, false) {
					close(charging)
					<-resume
				}
				return time.Now()
			}
			release := make(chan struct{})
			calls := answerAfter(e, tt.subject, tt.reply, func() { <-release })
			as := func(client, path string) response {
				return e.request(http.MethodGet, path, "X-Forwarded-For", client)
			}

			answerA, answerB := make(chan response, 1), make(chan response, 1)
			go func() { answerA <- as("203.0.113.7", tt.path) }()
			deadline := time.Now().Add(10 * time.Second)
			for calls.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("A's call never reached the fetcher")
				}
				time.Sleep(5 * time.Millisecond)
			}
			armed.Store(true)
			go func() { answerB <- as("198.51.100.9", tt.path) }()
			<-charging // B found nothing cached
			close(release)
			expect(t, <-answerA, http.StatusOK) // A's call has ended
			close(resume)
			expect(t, <-answerB, http.StatusOK)
			if n := calls.Load(); n != 1 {
				t.Errorf("%d calls, want 1: B's read after A's call asked again", n)
			}
			// B's share (one page) is whole again: its read cost the site nothing.
			expect(t, as("198.51.100.9", tt.another), http.StatusOK)
		})
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
// queued already, spends nothing more of its share; each new book queued spends its
// pages (events.InteractivePagesPerBook).
func TestSourceShareChargesQueuedBooksOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 2 * events.InteractivePagesPerBook
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
// stored, from one client with a share of three books: three are queued, the others
// refused, however they interleave.
func TestSourceShareHoldsForConcurrentReaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 3 * events.InteractivePagesPerBook
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

// TestSourceShareChargesABookSyncItsPages: a book sync a reader waits for fetches
// events.InteractivePagesPerBook pages at reader priority and costs the client that
// many of its share; a call for one page (a listing page) costs one. A client with fewer
// tokens than a sync costs gets 429 with Retry-After, and may still ask for one page.
func TestSourceShareChargesABookSyncItsPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = events.InteractivePagesPerBook + 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	listingAnswer(e, 0)
	as := func(path string) response {
		return e.request(http.MethodGet, path, "X-Forwarded-For", "203.0.113.7")
	}
	expect(t, as("/xsw/api/books/1000001"), http.StatusAccepted)
	r := as("/xsw/api/books/1000002")
	expect(t, r, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if got := e.waiting("1000002"); len(got) != 0 {
		t.Errorf("book 1000002 queued past the client's share: %v", got)
	}
	expect(t, as("/xsw/api/categories/1/books?bg_sync=false"), http.StatusOK)
	expect(t, as("/xsw/api/categories/1/books?bg_sync=false&page=2"), http.StatusTooManyRequests)
}

// TestSpentShareIsNotPassedToOtherClients: client A, its share spent, and client B ask
// for the same uncached listing page at once, A first. A is refused before it joins the
// call, so B is answered from the site, asked once, rather than with A's 429.
func TestSpentShareIsNotPassedToOtherClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = 1
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	calls := listingAnswer(e, 0)
	as := func(client string, page int) response {
		return e.request(http.MethodGet, "/xsw/api/categories/1/books?bg_sync=false&page="+strconv.Itoa(page), "X-Forwarded-For", client)
	}
	expect(t, as("203.0.113.7", 1), http.StatusOK) // A's share is spent

	// A's next charge stops in the share's clock until released, wherever it is made:
	// B asks while A is being charged.
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	e.srv.sourceLimiter.now = func() time.Time {
		if first.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
		return time.Now()
	}
	answerA, answerB := make(chan response, 1), make(chan response, 1)
	go func() { answerA <- as("203.0.113.7", 2) }()
	<-entered
	go func() { answerB <- as("198.51.100.9", 2) }()
	var b response
	select {
	case b = <-answerB:
	case <-time.After(5 * time.Second):
		t.Error("B waited for A's call")
		close(release)
		b = <-answerB
		<-answerA
		expect(t, b, http.StatusOK)
		return
	}
	close(release)
	expect(t, b, http.StatusOK)
	expect(t, <-answerA, http.StatusTooManyRequests)
	if n := calls.Load(); n != 2 {
		t.Errorf("%d listing calls, want 2 (A's page 1, then page 2 once)", n)
	}
}

// TestSourceShareRefundsFollowers: a reader who joins another client's wait for the same
// book is charged as it joins and refunded when the wait ends: only the reader whose
// sync was queued pays for it.
func TestSourceShareRefundsFollowers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SourceRateLimit = events.InteractivePagesPerBook
		c.InteractiveWait = time.Second
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")} // App.Test's peer
	})
	as := func(client, id string) response {
		return e.request(http.MethodGet, "/xsw/api/books/"+id, "X-Forwarded-For", client)
	}
	answerB := make(chan response, 1)
	go func() { answerB <- as("198.51.100.9", "1000001") }()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.waiting("1000001")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B's read never queued the book")
		}
		time.Sleep(5 * time.Millisecond)
	}
	expect(t, as("203.0.113.7", "1000001"), http.StatusAccepted) // A joins B's wait
	expect(t, <-answerB, http.StatusAccepted)
	// A's share is whole again; B's paid for the sync queued.
	expect(t, as("203.0.113.7", "1000002"), http.StatusAccepted)
	expect(t, as("198.51.100.9", "1000003"), http.StatusTooManyRequests)
}
