package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher/internal/checkpoint"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSite serves books of three table-of-contents pages with four chapters each, in the
// site's markup, and records the paths asked for. Paths in fail answer with that status;
// a path in truncate is served cut in half that many times.
type testSite struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	fail     map[string]int
	truncate map[string]int
	delay    time.Duration
}

func newTestSite(t *testing.T) *testSite {
	s := &testSite{fail: map[string]int{}, truncate: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *testSite) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	code, delay := s.fail[strings.Split(r.URL.Path, "/")[1]], s.delay
	cut := s.truncate[r.URL.Path] > 0
	if cut {
		s.truncate[r.URL.Path]--
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	var page bytes.Buffer
	if !render(&page, r) {
		http.NotFound(w, r)
		return
	}
	if cut {
		page.Truncate(page.Len() / 2)
	}
	_, _ = w.Write(page.Bytes())
}

// render writes the page at r's path to w, or reports that there is none.
func render(w io.Writer, r *http.Request) bool {
	var book string
	var page int
	if n, _ := fmt.Sscanf(r.URL.Path, "/%s", &book); n == 1 && strings.HasSuffix(book, "/") {
		book = strings.TrimSuffix(book, "/")
		fmt.Fprintf(w, `<html><head><meta charset="big5"><title>書%s</title></head><body>
<div class="block"><div class="block_img2"><img src="/cover/%s.jpg"></div>
<div class="block_txt2"><h2><a href="/%s/">書名%s</a></h2><p>作者：<a href="#">某人</a></p><p>分類：<a href="#">玄幻小說</a></p>
<p>狀態：連載中</p><p>更新：2026/1/20 22:05:09</p><p>最新：<a href="9%s12.html">第12章 終</a></p></div></div>
<div class="intro_info">簡介。</div><ul class="chapter"><li><a href="9%s12.html">第12章 終</a></li></ul>
<div class="book_more"><a href="page-1.html">查看更多章節</a></div></body></html>`, book, book, book, book, book, book)
		return true
	}
	if n, _ := fmt.Sscanf(r.URL.Path, "/%7s/page-%d.html", &book, &page); n == 2 {
		fmt.Fprintf(w, `<html><head><meta charset="big5"></head><body><div class="page">(第%d/3頁)</div><div class="cover"><ul class="chapter">`, page)
		if page <= 3 {
			for i := 1; i <= 4; i++ {
				n := (page-1)*4 + i
				fmt.Fprintf(w, `<li><a href="/%s/9%s%02d.html">第%d章 章%d</a></li>`, book, book, n, n, n)
			}
		}
		fmt.Fprint(w, `</ul></div></body></html>`)
		return true
	}
	return false
}

func (s *testSite) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

type harness struct {
	ns   *natstest.Server
	site *testSite
	pool *Pool
	// checkpoints is the bucket the syncer keeps its checkpoints in.
	checkpoints jetstream.KeyValue
}

// newHarness returns a pool serving m.xsw.tw's adapter on a testSite.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	ts := newTestSite(t)
	h := newHarnessOf(t, cfg, served(t, xsw.ID, func(base *url.URL) site.Source { return xsw.New(base) }, ts.URL))
	h.site = ts
	return h
}

// served returns site id served by the adapter built by adapter on the server at
// rawURL, without politeness.
func served(t *testing.T, id string, adapter func(*url.URL) site.Source, rawURL string) *sites.Site {
	t.Helper()
	base, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	limiter := politeness.New(nil, "", politeness.Config{})
	return &sites.Site{ID: id, Source: adapter(base), Limiter: limiter,
		Client: source.New(base, limiter, source.Config{Timeout: 5 * time.Second})}
}

// newHarnessOf returns a pool serving the sites given, the first the default, with the
// checkpoints bucket, on a JetStream server of its own.
func newHarnessOf(t *testing.T, cfg Config, served ...*sites.Site) *harness {
	t.Helper()
	return newHarnessOn(t, natstest.Start(t), cfg, served...)
}

// newHarnessOn is newHarnessOf on the server ns.
func newHarnessOn(t *testing.T, ns *natstest.Server, cfg Config, served ...*sites.Site) *harness {
	t.Helper()
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	syncer := &Syncer{JS: ns.JS, Sites: sites.NewSet(served...), Logger: slog.New(slog.DiscardHandler), Checkpoints: checkpoint.Store{KV: kv}}
	if cfg.FetcherID == "" {
		cfg.FetcherID = "test-fetcher"
	}
	pool, err := NewPool(t.Context(), ns.Conn, ns.JS, syncer, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{ns: ns, pool: pool, checkpoints: kv}
}

// run runs the pool until the returned stop is called (and at test end).
func (h *harness) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.pool.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (h *harness) request(t *testing.T, r events.BookRequested) {
	t.Helper()
	if _, err := broker.Publish(t.Context(), h.ns.JS, r.Subject(), r.MsgID(), &r); err != nil {
		t.Fatal(err)
	}
}

// jobEvents returns the job events of kind published so far.
func (h *harness) jobEvents(t *testing.T, kind events.JobKind) []events.JobEvent {
	t.Helper()
	var out []events.JobEvent
	for _, m := range h.messages(t, "xsw.job."+string(kind)+".>") {
		var e events.JobEvent
		if err := events.Decode(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func (h *harness) messages(t *testing.T, filter string) []*jetstream.RawStreamMsg {
	t.Helper()
	c, err := h.ns.JS.OrderedConsumer(t.Context(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, &jetstream.RawStreamMsg{Subject: m.Subject(), Data: m.Data()})
		}
		if n == 0 {
			return out
		}
	}
}

func (h *harness) waiting(t *testing.T) uint64 {
	t.Helper()
	s, err := h.ns.JS.Stream(t.Context(), events.StreamRequests)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func req(book string, lane events.Lane) events.BookRequested {
	return events.NewBookRequested(xsw.ID, book, lane, 0, false, "test", time.Now())
}

func TestSyncPublishesBookAndEveryTOCPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 2, DedupWindow: time.Minute})
	h.run(t)
	h.request(t, req("1000001", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "completed job", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })

	done := h.jobEvents(t, events.JobCompleted)[0]
	if done.Chapters != 12 || done.TOCPages != 3 || done.Requests != 4 {
		t.Errorf("completed = %d chapters, %d pages, %d requests; want 12, 3, 4", done.Chapters, done.TOCPages, done.Requests)
	}
	var numbers []int
	for _, m := range h.messages(t, "xsw.fetched.toc.>") {
		var p events.TOCPageFetched
		if err := events.Decode(m.Data, &p); err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Chapters {
			numbers = append(numbers, c.Number)
		}
	}
	for i, n := range numbers {
		if n != i+1 {
			t.Fatalf("chapter numbers %v, want 1..12 in order", numbers)
		}
	}
	if len(numbers) != 12 {
		t.Errorf("%d chapter refs published, want 12", len(numbers))
	}
	if got := len(h.messages(t, "xsw.fetched.book.>")); got != 1 {
		t.Errorf("%d metadata events, want 1", got)
	}
	testkit.Eventually(t, 10*time.Second, "request acked", func() bool { return h.waiting(t) == 0 })

	// Layer three of dedup: the same book again within the window costs no request.
	before := len(h.site.requests())
	h.request(t, events.NewBookRequested(xsw.ID, "1000001", events.LaneManual, 10, false, "again", time.Now()))
	testkit.Eventually(t, 10*time.Second, "skipped job", func() bool { return len(h.jobEvents(t, events.JobSkipped)) == 1 })
	if after := len(h.site.requests()); after != before {
		t.Errorf("a recently synced book cost %d more requests", after-before)
	}
	// The skipped request leaves the stream when acknowledged, just after its event:
	// until then the subject holds it and refuses another.
	testkit.Eventually(t, 10*time.Second, "skipped request acked", func() bool { return h.waiting(t) == 0 })
	// Unless forced.
	h.request(t, events.NewBookRequested(xsw.ID, "1000001", events.LaneManual, 10, true, "forced", time.Now()))
	testkit.Eventually(t, 10*time.Second, "forced sync", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 2 })
}

func TestPermanentFailureIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, RetryBase: 10 * time.Millisecond})
	h.site.fail["1000404"] = http.StatusNotFound
	h.run(t)
	h.request(t, req("1000404", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "failed job", func() bool { return len(h.jobEvents(t, events.JobFailed)) == 1 })
	f := h.jobEvents(t, events.JobFailed)[0]
	if !f.Permanent || !f.Dead || f.Attempt != 1 || !strings.Contains(f.Error, "not found") {
		t.Errorf("failed event = %+v, want permanent, dead, first attempt, not found", f)
	}
	if got := len(h.site.requests()); got != 1 {
		t.Errorf("a 404 was asked %d times, want once", got)
	}
	testkit.Eventually(t, 10*time.Second, "request terminated", func() bool { return h.waiting(t) == 0 })
	dead := h.deadLetters(t)
	if len(dead) != 1 || dead[0].Request.BookID != "1000404" || dead[0].Attempts != 1 {
		t.Errorf("dead letters = %+v", dead)
	}
}

func (h *harness) deadLetters(t *testing.T) []events.DeadLetter {
	t.Helper()
	c, err := h.ns.JS.OrderedConsumer(t.Context(), events.StreamDead, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.DeadLetter
	for m := range batch.Messages() {
		var d events.DeadLetter
		if err := events.Decode(m.Data(), &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func TestTransientFailureRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, MaxAttempts: 3, RetryBase: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	h.site.fail["1000500"] = http.StatusInternalServerError
	h.run(t)
	h.request(t, req("1000500", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "failed job", func() bool { return len(h.jobEvents(t, events.JobFailed)) == 1 })
	if got := len(h.jobEvents(t, events.JobRetrying)); got != 2 {
		t.Errorf("%d retrying events, want 2 (attempts 1 and 2)", got)
	}
	f := h.jobEvents(t, events.JobFailed)[0]
	if f.Permanent || !f.Dead || f.Attempt != 3 {
		t.Errorf("failed event = %+v, want transient, dead, attempt 3", f)
	}
	if got := len(h.site.requests()); got != 3 {
		t.Errorf("site asked %d times, want 3", got)
	}
	testkit.Eventually(t, 10*time.Second, "request gone", func() bool { return h.waiting(t) == 0 })
}

func TestTruncatedPageIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, RetryBase: 10 * time.Millisecond})
	h.site.truncate["/1000003/page-2.html"] = 1
	h.run(t)
	h.request(t, req("1000003", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "completed job", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	retrying := h.jobEvents(t, events.JobRetrying)
	if len(retrying) != 1 || !strings.Contains(retrying[0].Error, "truncated") {
		t.Errorf("retrying events %+v, want one saying the page was truncated", retrying)
	}
	if c := h.jobEvents(t, events.JobCompleted)[0]; c.Attempt != 2 || c.Chapters != 12 {
		t.Errorf("completed event %+v, want attempt 2 with all 12 chapters", c)
	}
	for _, m := range h.messages(t, "xsw.fetched.toc.>") {
		var ev events.TOCPageFetched
		if err := events.Decode(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if len(ev.Chapters) != 4 || ev.Chapters[0].Number != (ev.Page-1)*4+1 {
			t.Errorf("page %d published with %d chapters from number %d, want 4 from %d", ev.Page, len(ev.Chapters), ev.Chapters[0].Number, (ev.Page-1)*4+1)
		}
	}
}

func TestPoisonRequestIsTerminated(t *testing.T) {
	t.Parallel()
	var poison atomic.Int64
	h := newHarness(t, Config{Workers: 1, Poison: func() { poison.Add(1) }})
	h.run(t)
	if _, err := h.ns.JS.Publish(t.Context(), events.RequestSubject(events.LanePrefetch, xsw.ID, "1000001"), []byte(`{"version":9}`)); err != nil {
		t.Fatal(err)
	}
	// A valid request on another book's subject is poison too.
	misfiled, err := json.Marshal(req("1000003", events.LanePrefetch))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ns.JS.Publish(t.Context(), events.RequestSubject(events.LanePrefetch, xsw.ID, "1000004"), misfiled); err != nil {
		t.Fatal(err)
	}
	h.request(t, req("1000002", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "good request after the poison ones", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	testkit.Eventually(t, 10*time.Second, "poison requests gone", func() bool { return h.waiting(t) == 0 })
	if n := poison.Load(); n != 2 {
		t.Errorf("%d poison requests counted, want 2", n)
	}
	for _, p := range h.site.requests() {
		if !strings.HasPrefix(p, "/1000002/") {
			t.Errorf("poison request reached the site: %s", p)
		}
	}
	if got := len(h.jobEvents(t, events.JobStarted)); got != 1 {
		t.Errorf("%d jobs started, want 1 (poison requests are no jobs)", got)
	}
}

// TestLegacyRequestIsServed: a request a build before site-qualified books stored (a
// version 1 payload without a site, on the subject with the bare book id) is m.xsw.tw's
// and is synced after an upgrade; one for another book on that subject is still poison.
func TestLegacyRequestIsServed(t *testing.T) {
	t.Parallel()
	var poison atomic.Int64
	h := newHarness(t, Config{Workers: 1, DedupWindow: time.Minute, Poison: func() { poison.Add(1) }})
	h.run(t)
	v1 := func(book string) []byte {
		return []byte(`{"version":1,"book_id":"` + book + `","lane":"prefetch","priority":0,"requested_at":"` +
			time.Now().UTC().Format(time.RFC3339Nano) + `","force":false}`)
	}
	if _, err := h.ns.JS.Publish(t.Context(), events.RequestSubjectLegacy(events.LanePrefetch, "1000001"), v1("1000001")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ns.JS.Publish(t.Context(), events.RequestSubjectLegacy(events.LanePrefetch, "1000002"), v1("1000003")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the legacy request synced", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	testkit.Eventually(t, 10*time.Second, "both requests settled", func() bool { return h.waiting(t) == 0 })
	done := h.jobEvents(t, events.JobCompleted)[0]
	if done.Site != xsw.ID || done.BookID != "1000001" || done.Chapters != 12 {
		t.Errorf("completed %s/%s with %d chapters, want xsw/1000001 with 12", done.Site, done.BookID, done.Chapters)
	}
	if n := poison.Load(); n != 1 {
		t.Errorf("%d poison requests, want 1 (another book's request on a legacy subject)", n)
	}
}

// TestRequestOfAnUnservedSiteWaits: a request for a site this fetcher does not serve
// (one another fetcher serves, or one to be added to SOURCES) never reaches it: only a
// site's own consumers deliver its requests, so it waits in its lane for a fetcher that
// serves the site, neither synced here nor thrown away as poison.
func TestRequestOfAnUnservedSiteWaits(t *testing.T) {
	t.Parallel()
	var poison atomic.Int64
	h := newHarness(t, Config{Workers: 1, Poison: func() { poison.Add(1) }})
	h.run(t)
	h.request(t, events.NewBookRequested("czbooks", "cr382b", events.LanePrefetch, 0, false, "test", time.Now()))
	h.request(t, req("1000002", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "the served site's request done", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	testkit.Eventually(t, 10*time.Second, "only the other request left", func() bool { return h.waiting(t) == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := poison.Load(); n != 0 {
		t.Errorf("%d poison requests, want none", n)
	}
	if got := h.waiting(t); got != 1 {
		t.Errorf("%d requests waiting, want czbooks' one", got)
	}
	if got := len(h.jobEvents(t, events.JobStarted)); got != 1 {
		t.Errorf("%d jobs started, want 1", got)
	}
}

// TestNonCanonicalBookIDIsRefused: "0123" is not how m.xsw.tw writes book 123. The
// request fails for good without a request to the site.
func TestNonCanonicalBookIDIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, RetryBase: 10 * time.Millisecond})
	h.run(t)
	h.request(t, req("0123", events.LaneInteractive))
	testkit.Eventually(t, 10*time.Second, "failed job", func() bool { return len(h.jobEvents(t, events.JobFailed)) == 1 })
	f := h.jobEvents(t, events.JobFailed)[0]
	if !f.Permanent || f.Attempt != 1 || f.Site != xsw.ID || f.BookID != "0123" || !strings.Contains(f.Error, "canonical") {
		t.Errorf("failed event = %+v, want a permanent failure of xsw book 0123 on attempt 1 naming the canonical id", f)
	}
	if f.Requests != 0 {
		t.Errorf("failed event counts %d requests, want 0", f.Requests)
	}
	if got := h.site.requests(); len(got) != 0 {
		t.Errorf("a non-canonical id reached the site: %v", got)
	}
	testkit.Eventually(t, 10*time.Second, "request terminated", func() bool { return h.waiting(t) == 0 })
	if got := len(h.jobEvents(t, events.JobRetrying)); got != 0 {
		t.Errorf("%d retries of a non-canonical id, want none", got)
	}
}

// TestIncrementalSyncFromLegacyCheckpoint: a checkpoint written before books were
// site-qualified (under the bare id, with only the size of page 1) still makes a resync
// incremental: the book page, then the last known page onwards, numbered on from it.
func TestIncrementalSyncFromLegacyCheckpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1})
	// The last sync saw pages 1 and 2 (8 chapters, the newest 9100000708); the site now has 3.
	legacy := `{"last_chapter_id":"9100000708","chapters":8,"toc_pages":2,"per_page":4,"home":{},"at":"2026-01-01T00:00:00Z"}`
	if _, err := h.checkpoints.Put(t.Context(), "1000007", []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	h.run(t)
	r := req("1000007", events.LaneRefresh)
	r.Known = &events.KnownBook{Chapters: 8, LastChapterID: "9100000708"}
	h.request(t, r)
	testkit.Eventually(t, 10*time.Second, "completed job", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	if got, want := h.site.requests(), []string{"/1000007/", "/1000007/page-2.html", "/1000007/page-3.html"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("site requests %v, want %v", got, want)
	}
	var pages []string
	for _, m := range h.messages(t, "xsw.fetched.toc.>") {
		var p events.TOCPageFetched
		if err := events.Decode(m.Data, &p); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, fmt.Sprintf("%s p%d from %d", m.Subject, p.Page, p.Chapters[0].Number))
	}
	if want := []string{"xsw.fetched.toc.xsw.1000007 p2 from 5", "xsw.fetched.toc.xsw.1000007 p3 from 9"}; strings.Join(pages, ",") != strings.Join(want, ",") {
		t.Errorf("published %v, want %v", pages, want)
	}
	// The new checkpoint is under the book's key and remembers where its last page starts.
	e, err := h.checkpoints.Get(t.Context(), events.Key(xsw.ID, "1000007"))
	if err != nil {
		t.Fatal(err)
	}
	var cp checkpoint.Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Chapters != 12 || cp.TOCPages != 3 || cp.LastPageFirst != 9 || cp.FirstPageRefs != 4 || cp.LastChapterID != "9100000712" {
		t.Errorf("checkpoint = %+v, want 12 chapters on 3 pages, the last from 9, 4 on page 1, newest 9100312", cp)
	}
}

func TestExpiredRequestIsSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, MaxAge: time.Minute})
	h.run(t)
	h.request(t, events.NewBookRequested(xsw.ID, "1000001", events.LanePrefetch, 0, false, "old", time.Now().Add(-time.Hour)))
	testkit.Eventually(t, 10*time.Second, "skipped job", func() bool { return len(h.jobEvents(t, events.JobSkipped)) == 1 })
	if got := h.jobEvents(t, events.JobSkipped)[0].Reason; !strings.Contains(got, "expired") {
		t.Errorf("reason = %q", got)
	}
	if n := len(h.site.requests()); n != 0 {
		t.Errorf("expired request made %d site requests", n)
	}
}

// TestHigherLaneFirst queues work in every lane before a single worker starts, and
// checks it is taken strictly by lane.
func TestHigherLaneFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, FairnessEvery: 100})
	books := map[events.Lane]string{
		events.LaneRefresh: "1000004", events.LanePrefetch: "1000003", events.LaneManual: "1000002", events.LaneInteractive: "1000001",
	}
	for _, l := range []events.Lane{events.LaneRefresh, events.LanePrefetch, events.LaneManual, events.LaneInteractive} {
		h.request(t, req(books[l], l))
	}
	// A consumer learns of a stored message a moment after the publish is acknowledged:
	// start when every lane's consumer has its request.
	testkit.Eventually(t, 10*time.Second, "every lane's consumer has its request", func() bool {
		for _, lane := range h.pool.queues[xsw.ID] {
			info, err := lane[0].Info(t.Context())
			if err != nil || info.NumPending != 1 {
				return false
			}
		}
		return true
	})
	h.run(t)
	testkit.Eventually(t, 10*time.Second, "all synced", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 4 })
	var order []string
	for _, e := range h.jobEvents(t, events.JobStarted) {
		order = append(order, e.BookID)
	}
	want := []string{"1000001", "1000002", "1000003", "1000004"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("start order %v, want %v (interactive, manual, prefetch, refresh)", order, want)
	}
}

// TestLowerLanesGetTheirShare keeps the prefetch lane full and checks refresh work still
// runs: one pick in FairnessEvery starts from the lowest lane.
func TestLowerLanesGetTheirShare(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, FairnessEvery: 3})
	for i := 0; i < 9; i++ {
		h.request(t, req(fmt.Sprintf("10001%02d", i), events.LanePrefetch))
	}
	h.request(t, req("1000999", events.LaneRefresh))
	h.run(t)
	testkit.Eventually(t, 10*time.Second, "all synced", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 10 })
	for i, e := range h.jobEvents(t, events.JobStarted) {
		if e.BookID == "1000999" {
			if i > 2 {
				t.Errorf("refresh job started %dth behind a full prefetch lane, want within the first 3", i+1)
			}
			return
		}
	}
	t.Fatal("refresh job never started")
}

// TestDrainHandsBackUnfinishedJobs stops a pool mid-job: past ShutdownTimeout the job is
// handed back at once, and a new pool finishes it.
func TestDrainHandsBackUnfinishedJobs(t *testing.T) {
	h := newHarness(t, Config{Workers: 1, ShutdownTimeout: 100 * time.Millisecond, AckWait: 30 * time.Second})
	h.site.delay = 2 * time.Second
	stop := h.run(t)
	h.request(t, req("1000001", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "job started", func() bool { return len(h.pool.Active()) == 1 })
	begun := time.Now()
	stop()
	if took := time.Since(begun); took > time.Second {
		t.Errorf("drain took %v with a 100ms shutdown timeout", took)
	}
	if len(h.jobEvents(t, events.JobCompleted)) != 0 {
		t.Fatal("job completed although the site was slower than the drain")
	}
	// Handed back, not waiting for AckWait (30s): a fresh pool gets it at once.
	h.site.mu.Lock()
	h.site.delay = 0
	h.site.mu.Unlock()
	h.run(t)
	testkit.Eventually(t, 10*time.Second, "job finished by the next pool", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	if a := h.jobEvents(t, events.JobCompleted)[0].Attempt; a != 2 {
		t.Errorf("completed on attempt %d, want 2", a)
	}
}

// TestDrainFinishesShortJobs: a job that ends within ShutdownTimeout completes normally.
func TestDrainFinishesShortJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{Workers: 1, ShutdownTimeout: 3 * time.Second})
	h.site.delay = 150 * time.Millisecond
	stop := h.run(t)
	h.request(t, req("1000001", events.LanePrefetch))
	testkit.Eventually(t, 10*time.Second, "job started", func() bool { return len(h.pool.Active()) == 1 })
	stop()
	if got := len(h.jobEvents(t, events.JobCompleted)); got != 1 {
		t.Errorf("%d completed after a graceful drain, want 1", got)
	}
	if w := h.waiting(t); w != 0 {
		t.Errorf("%d requests left waiting", w)
	}
}

// testWriter sends log lines to t.Log, so they show with a failing test only.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
