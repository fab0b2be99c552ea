package crawl

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/broker"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listingSite serves category 1 with two pages of three books (page 3 and on are past
// the end) and answers 404 for category 2. The first request for category 1 page 2
// fails with a 500.
type listingSite struct {
	mu     sync.Mutex
	paths  []string
	failed bool
}

func (s *listingSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	fail := r.URL.Path == "/fenlei1_2.html" && !s.failed
	if fail {
		s.failed = true
	}
	s.mu.Unlock()
	var cat, page int
	if n, _ := fmt.Sscanf(r.URL.Path, "/fenlei%d_%d.html", &cat, &page); n != 2 || cat != 1 {
		http.NotFound(w, r)
		return
	}
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, `<html><body><div class="nav"><a href="/">首頁</a></div>`)
	if page <= 2 {
		for i := 0; i < 3; i++ {
			id := 1000000 + page*10 + i
			fmt.Fprintf(w, `<div class="bookbox"><div class="bookinfo"><h4 class="bookname"><i class="iTit"><a href="/%d/">書%d</a></i></h4>
<div class="author">作者：某</div></div></div>`, id, id)
		}
	}
	fmt.Fprint(w, `</body></html>`)
}

func (s *listingSite) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// newCrawler returns a crawler of the listing site ls, on a JetStream server of its own,
// and the crawls' progress bucket.
func newCrawler(t *testing.T, ls *listingSite) (*Crawler, *natstest.Server, jetstream.KeyValue) {
	t.Helper()
	ns := natstest.Start(t)
	srv := httptest.NewServer(ls)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketCrawls)
	if err != nil {
		t.Fatal(err)
	}
	limiter := politeness.New(nil, "", politeness.Config{})
	st := &sites.Site{ID: xsw.ID, Source: xsw.New(base), Limiter: limiter,
		Client: source.New(base, limiter, source.Config{Timeout: 2 * time.Second})}
	c := &Crawler{JS: ns.JS, Sites: sites.NewSet(st), Progress: kv, Logger: slog.New(slog.DiscardHandler), RetryDelay: 50 * time.Millisecond}
	return c, ns, kv
}

func TestCrawlQueuesEveryListedBookAndResumes(t *testing.T) {
	t.Parallel()
	ls := &listingSite{}
	c, ns, kv := newCrawler(t, ls)
	// Category 01 is not how the site writes category 1: no page of it is asked for.
	req := events.NewCrawlRequested(xsw.ID, []events.CategoryID{"1", "2", "01"}, 1, 5, time.Now())
	if _, err := broker.Publish(t.Context(), ns.JS, req.Subject(), req.MsgID(), &req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var prog events.CrawlProgress
	deadline := time.Now().Add(10 * time.Second)
	for prog.State != events.CrawlDone {
		if time.Now().After(deadline) {
			t.Fatalf("crawl not done: %+v", prog)
		}
		time.Sleep(20 * time.Millisecond)
		if e, err := kv.Get(t.Context(), req.CrawlID); err == nil {
			_ = events.Decode(e.Value(), &prog)
		}
	}
	if prog.BooksQueued != 6 || prog.BooksSeen != 6 || prog.PagesDone != prog.PagesTotal || prog.PagesTotal != 15 {
		t.Errorf("progress = %+v, want 6 books queued, 15 of 15 pages done", prog)
	}
	if len(prog.Errors) != 1 || !strings.Contains(prog.Errors[0], `category "01"`) {
		t.Errorf("progress errors %q, want one naming category 01", prog.Errors)
	}
	// Page 1 is not fetched again after the transient failure on page 2; each category
	// stops at its first empty or missing page.
	want := []string{"/fenlei1_1.html", "/fenlei1_2.html", "/fenlei1_2.html", "/fenlei1_3.html", "/fenlei2_1.html"}
	if got := ls.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("site requests %v, want %v", got, want)
	}
	s, _ := ns.JS.Stream(t.Context(), events.StreamRequests)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(events.RequestSubjectLane(events.LanePrefetch)))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 6 {
		t.Errorf("%d books waiting in the prefetch lane, want 6", len(info.State.Subjects))
	}
	for subject := range info.State.Subjects {
		if site, _, ok := events.BookOfSubject(subject, events.RequestPrefixTokens); !ok || site != xsw.ID {
			t.Errorf("book queued on %s, want one of site xsw", subject)
		}
	}
	cs, _ := ns.JS.Stream(t.Context(), events.StreamCrawls)
	if ci, _ := cs.Info(t.Context()); ci.State.Msgs != 0 {
		t.Errorf("crawl request still in the stream after it was done")
	}
}

func TestPoisonCrawlRequestIsTerminated(t *testing.T) {
	t.Parallel()
	ls := &listingSite{}
	c, ns, _ := newCrawler(t, ls)
	var poison atomic.Int64
	c.Poison = func() { poison.Add(1) }
	// A crawl of a site this fetcher does not serve is poison too.
	unserved, err := json.Marshal(events.NewCrawlRequested("czbooks", []events.CategoryID{"xuanhuan"}, 1, 1, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{`{"version":9}`, `not json`, string(unserved)} {
		if _, err := ns.JS.Publish(t.Context(), "xsw.crawl.poison", []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	cs, _ := ns.JS.Stream(t.Context(), events.StreamCrawls)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ci, err := cs.Info(t.Context())
		if err == nil && ci.State.Msgs == 0 && poison.Load() == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d poison crawl requests counted, stream %+v (%v); want 3 counted and none left", poison.Load(), ci, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ls.requests(); len(got) != 0 {
		t.Errorf("poison crawl requests reached the site: %v", got)
	}
}
