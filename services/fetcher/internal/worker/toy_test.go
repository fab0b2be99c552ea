package worker

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/platform/testkit"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

// toy is a site adapter written for this test alone, unlike m.xsw.tw in every way the
// seam absorbs: ids like "ab-12", categories named by words, and the whole chapter list,
// with volume headers, on the book page (/b/{id}).
type toy struct{ base string }

var _ site.Source = toy{}

func (toy) Info() site.Info {
	return site.Info{ID: "toy", Name: "Toy", DefaultBaseURL: "http://toy.example", BookIDPattern: `[a-z]{2}-[1-9][0-9]{0,3}`, CategoryIDPattern: `[a-z]+`}
}

func (t toy) CanonicalBookID(id string) bool {
	re, _ := site.CompilePattern(t.Info().BookIDPattern)
	return re.MatchString(id)
}

func (t toy) CanonicalCategoryID(id string) bool {
	re, _ := site.CompilePattern(t.Info().CategoryIDPattern)
	return re.MatchString(id)
}

func (t toy) HomeURL() string { return t.base + "/" }
func (t toy) ListingURL(cat string, page int) string {
	return fmt.Sprintf("%s/c/%s/%d", t.base, cat, page)
}
func (t toy) BookURL(id string) string        { return t.base + "/b/" + id }
func (t toy) ChapterURL(id, ch string) string { return t.base + "/b/" + id + "/" + ch }

func (toy) ParseHome([]byte, *url.URL) ([]site.Category, error) {
	return []site.Category{{ID: "fantasy", Name: "Fantasy"}}, nil
}
func (toy) ParseListing([]byte, *url.URL) ([]site.ListingBook, error) { return nil, nil }
func (toy) ParseChapter(_ []byte, _ *url.URL, id, ch string) (*site.Chapter, error) {
	return &site.Chapter{BookID: id, ChapterID: ch, Text: "text"}, nil
}

// ParseBook reads h1.title, p.status and the list ul.list: li.vol are volume headers,
// other li hold a chapter link each.
func (toy) ParseBook(body []byte, pageURL *url.URL, id string) (*site.Book, error) {
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		return nil, &site.ParseError{Page: "book", URL: pageURL.String(), What: err.Error()}
	}
	b := &site.Book{BookID: id, Name: doc.Find("h1.title").Text(), Status: doc.Find("p.status").Text(), SourceURL: pageURL.String(),
		TOC: &site.TOCPage{BookID: id, Page: 1, TotalPages: 1, Chapters: []site.ChapterRef{}}}
	if b.Name == "" {
		return nil, &site.ParseError{Page: "book", URL: pageURL.String(), What: "no h1.title"}
	}
	b.Finished = strings.Contains(b.Status, "完結")
	doc.Find("ul.list > li").Each(func(_ int, li *goquery.Selection) {
		if li.HasClass("vol") {
			b.Volumes = append(b.Volumes, site.Volume{Title: li.Text(), FirstChapter: len(b.TOC.Chapters) + 1})
			return
		}
		href, ok := li.Find("a").Attr("href")
		if !ok {
			return
		}
		u := pageURL.ResolveReference(&url.URL{Path: href})
		b.TOC.Chapters = append(b.TOC.Chapters, site.ChapterRef{Number: len(b.TOC.Chapters) + 1, ChapterID: path.Base(href), Title: li.Text(), URL: u.String()})
	})
	if n := len(b.TOC.Chapters); n > 0 {
		last := b.TOC.Chapters[n-1]
		b.LastChapterID, b.LastChapterTitle, b.LastChapterURL = last.ChapterID, last.Title, last.URL
	}
	return b, nil
}

// toySite serves toy books: each has chapters c1..c{n} under two volumes, and an ETag
// that changes with n. It records every request and whether it was conditional.
type toySite struct {
	*httptest.Server
	mu       sync.Mutex
	chapters map[string]int
	got      []string
}

func newToySite(t *testing.T, chapters map[string]int) *toySite {
	s := &toySite{chapters: chapters}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		line := r.URL.Path
		if inm := r.Header.Get("If-None-Match"); inm != "" {
			line += " if-none-match " + inm
		}
		s.got = append(s.got, line)
		id, ok := strings.CutPrefix(r.URL.Path, "/b/")
		n, known := s.chapters[id]
		if !ok || !known {
			http.NotFound(w, r)
			return
		}
		etag := fmt.Sprintf(`"%s-%d"`, id, n)
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, `<html><body><h1 class="title">書 %s</h1><p class="status">已完結</p><ul class="list"><li class="vol">第一卷</li>`, id)
		for i := 1; i <= n; i++ {
			if i == 3 {
				fmt.Fprint(w, `<li class="vol">第二卷</li>`)
			}
			fmt.Fprintf(w, `<li><a href="/b/%s/c%d">第%d章</a></li>`, id, i, i)
		}
		fmt.Fprint(w, `</ul></body></html>`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *toySite) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *toySite) set(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chapters[id] = n
}

// TestToySiteSyncsInOneRequest runs a site whose book page carries the whole chapter
// list through the pool, next to m.xsw.tw: a new book costs one request, a resync of an
// unchanged one one conditional request, and a changed one one request again.
func TestToySiteSyncsInOneRequest(t *testing.T) {
	t.Parallel()
	ts := newToySite(t, map[string]int{"ab-12": 3})
	xs := newTestSite(t)
	h := newHarnessOf(t, Config{Workers: 1},
		served(t, xsw.ID, func(base *url.URL) site.Source { return xsw.New(base) }, xs.URL),
		served(t, "toy", func(base *url.URL) site.Source { return toy{base: strings.TrimSuffix(base.String(), "/")} }, ts.URL))
	h.run(t)
	// Each request in a lane of its own: the same request twice within the duplicate
	// window is one.
	request := func(lane events.Lane, known *events.KnownBook) {
		t.Helper()
		r := events.NewBookRequested("toy", "ab-12", lane, 0, false, "test", time.Now())
		r.Known = known
		h.request(t, r)
	}

	// A new book: one request, the metadata and the whole list as page 1 of 1.
	request(events.LanePrefetch, nil)
	testkit.Eventually(t, 10*time.Second, "first sync", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 1 })
	done := h.jobEvents(t, events.JobCompleted)[0]
	if done.Site != "toy" || done.JobID != events.JobID("toy", "ab-12", 1) || done.Chapters != 3 || done.TOCPages != 1 || done.Requests != 1 || done.Unchanged {
		t.Errorf("completed = %+v, want toy ab-12 job 1: 3 chapters on 1 page, 1 request", done)
	}
	if got, want := ts.requests(), []string{"/b/ab-12"}; !cmp.Equal(got, want) {
		t.Errorf("toy site requests %v, want %v", got, want)
	}
	books := h.messages(t, "xsw.fetched.book.>")
	if len(books) != 1 || books[0].Subject != "xsw.fetched.book.toy.ab-12" {
		t.Fatalf("book events %+v, want one on xsw.fetched.book.toy.ab-12", books)
	}
	var meta events.BookFetched
	if err := events.Decode(books[0].Data, &meta); err != nil {
		t.Fatal(err)
	}
	wantVolumes := []events.Volume{{Title: "第一卷", FirstChapter: 1}, {Title: "第二卷", FirstChapter: 3}}
	if meta.Site != "toy" || meta.Book.Name != "書 ab-12" || !meta.Book.Finished || meta.Book.LastChapterID != "c3" || !cmp.Equal(meta.Book.Volumes, wantVolumes) {
		t.Errorf("book event = %+v, want toy's finished 書 ab-12, newest c3, volumes %v", meta, wantVolumes)
	}
	checkTOC := func(want ...string) {
		t.Helper()
		var got []string
		for _, m := range h.messages(t, "xsw.fetched.toc.>") {
			var p events.TOCPageFetched
			if err := events.Decode(m.Data, &p); err != nil {
				t.Fatal(err)
			}
			line := fmt.Sprintf("%s %s p%d/%d:", m.Subject, p.Site, p.Page, p.TotalPages)
			for _, c := range p.Chapters {
				line += fmt.Sprintf(" %d=%s", c.Number, c.ChapterID)
			}
			got = append(got, line)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("chapter list events (-want +got):\n%s", diff)
		}
	}
	checkTOC("xsw.fetched.toc.toy.ab-12 toy p1/1: 1=c1 2=c2 3=c3")
	if _, err := h.pool.synced.Get(t.Context(), events.Key("toy", "ab-12")); err != nil {
		t.Errorf("sync time not kept under toy.ab-12: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "request acked", func() bool { return h.waiting(t) == 0 })

	// Unchanged: one conditional request, answered 304; nothing published again.
	request(events.LaneRefresh, &events.KnownBook{Chapters: 3, LastChapterID: "c3"})
	testkit.Eventually(t, 10*time.Second, "resync", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 2 })
	done = h.jobEvents(t, events.JobCompleted)[1]
	if !done.Unchanged || done.Requests != 1 || done.Chapters != 3 || done.TOCPages != 1 {
		t.Errorf("resync = %+v, want unchanged after 1 request, 3 chapters on 1 page", done)
	}
	if got, want := ts.requests(), []string{"/b/ab-12", `/b/ab-12 if-none-match "ab-12-3"`}; !cmp.Equal(got, want) {
		t.Errorf("toy site requests %v, want %v", got, want)
	}
	if n := len(h.messages(t, "xsw.fetched.>")); n != 2 {
		t.Errorf("%d fetched events after an unchanged resync, want the first 2", n)
	}
	testkit.Eventually(t, 10*time.Second, "request acked", func() bool { return h.waiting(t) == 0 })

	// Changed: the conditional request brings the new list, still one request.
	ts.set("ab-12", 4)
	request(events.LaneManual, &events.KnownBook{Chapters: 3, LastChapterID: "c3"})
	testkit.Eventually(t, 10*time.Second, "resync of a changed book", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 3 })
	if done = h.jobEvents(t, events.JobCompleted)[2]; done.Unchanged || done.Requests != 1 || done.Chapters != 4 {
		t.Errorf("resync = %+v, want 4 chapters after 1 request", done)
	}
	checkTOC("xsw.fetched.toc.toy.ab-12 toy p1/1: 1=c1 2=c2 3=c3", "xsw.fetched.toc.toy.ab-12 toy p1/1: 1=c1 2=c2 3=c3 4=c4")
	if got := xs.requests(); len(got) != 0 {
		t.Errorf("requests for the toy site reached m.xsw.tw: %v", got)
	}
}

// TestSitesDoNotWaitForEachOther: m.xsw.tw is slow (one request per 250ms, four per
// book) and its books were queued first; the toy site's books, queued behind them in the
// same lane, are synced at the toy site's own pace, not after m.xsw.tw's.
func TestSitesDoNotWaitForEachOther(t *testing.T) {
	ts := newToySite(t, map[string]int{"ab-1": 3, "ab-2": 3, "ab-3": 3})
	xs := newTestSite(t)
	ns := natstest.Start(t)
	kv, err := ns.JS.KeyValue(t.Context(), events.BucketPoliteness)
	if err != nil {
		t.Fatal(err)
	}
	polite := func(s *sites.Site, interval time.Duration) *sites.Site {
		s.Limiter = politeness.New(kv, sites.LimiterKey(s.ID), politeness.Config{Interval: interval})
		base := s.Client.Base()
		s.Client = source.New(base, s.Limiter, source.Config{Timeout: 5 * time.Second})
		s.RateLimit = interval
		return s
	}
	h := newHarnessOn(t, ns, Config{Workers: 2},
		polite(served(t, xsw.ID, func(base *url.URL) site.Source { return xsw.New(base) }, xs.URL), 250*time.Millisecond),
		polite(served(t, "toy", func(base *url.URL) site.Source { return toy{base: strings.TrimSuffix(base.String(), "/")} }, ts.URL), 20*time.Millisecond))
	for _, id := range []string{"1000001", "1000002", "1000003", "1000004"} {
		h.request(t, req(id, events.LanePrefetch))
	}
	for _, id := range []string{"ab-1", "ab-2", "ab-3"} {
		h.request(t, events.NewBookRequested("toy", id, events.LanePrefetch, 0, false, "test", time.Now()))
	}
	h.run(t)
	testkit.Eventually(t, 10*time.Second, "every book synced", func() bool { return len(h.jobEvents(t, events.JobCompleted)) == 7 })
	var order []string
	for _, e := range h.jobEvents(t, events.JobCompleted) {
		order = append(order, e.Site)
	}
	// Two xsw jobs take 16 requests at 250ms: the toy books, one request each, are done
	// long before the first of them ends.
	if got := strings.Join(order[:3], " "); got != "toy toy toy" {
		t.Errorf("completion order %v, want the toy site's three books first", order)
	}
}
