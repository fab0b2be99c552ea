package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/internal/checkpoint"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/sites"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/xsw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const home = `<html><head><meta charset="big5"></head><body>
<a href="/fenlei1_1.html">玄幻小說</a><a href="/fenlei2_1.html">修真小說</a><a href="/fenlei1_1.html">玄幻</a></body></html>`

const listing = `<html><body><div class="bookbox"><div class="bookinfo">
<h4 class="bookname"><i class="iTit"><a href="/1000001/">萬古神帝</a></i></h4>
<div class="author">作者：飛天魚</div><div class="update"><a href="/1000001/900002.html">第2章 出關</a></div>
<div class="intro_line">簡介：三千年前。</div></div></div></body></html>`

const chapter = `<html><head><title>第2章 出關_萬古神帝</title></head><body><div id="nr_title">第2章 出關</div>
<div id="nr1">第一段。<br><br>第二段。<br>>>章節報錯<<</div></body></html>`

// recorder records the paths a test site is asked for.
type recorder struct {
	mu    sync.Mutex
	paths []string
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// take returns the paths asked for since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.paths
	r.paths = nil
	return out
}

// xswSite serves m.xsw.tw's pages: a home, a listing, two chapters, and the tables of
// contents of book 1000002 (10 chapters on pages of 4: 4, 4, 2) and 1000010 (40
// chapters on 10 pages).
func xswSite() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, home) })
	mux.HandleFunc("/fenlei1_1.html", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, listing) })
	mux.HandleFunc("/1000001/900002.html", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, chapter) })
	mux.HandleFunc("/1000001/900003.html", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html><body>nothing</body></html>") })
	mux.HandleFunc("/{book}/{page}", func(w http.ResponseWriter, r *http.Request) {
		chapters := map[string]int{"1000002": 10, "1000010": 40}[r.PathValue("book")]
		var page int
		if _, err := fmt.Sscanf(r.PathValue("page"), "page-%d.html", &page); err != nil || chapters == 0 {
			http.NotFound(w, r)
			return
		}
		pages := (chapters + 3) / 4
		fmt.Fprintf(w, `<html><body><div class="page">(第%d/%d頁)</div><div class="cover"><ul class="chapter">`, page, pages)
		for n := (page-1)*4 + 1; n <= min(page*4, chapters); n++ {
			fmt.Fprintf(w, `<li><a href="/%s/9%03d.html">第%d章</a></li>`, r.PathValue("book"), n, n)
		}
		fmt.Fprint(w, `</ul></div></body></html>`)
	})
	return mux
}

// toy is a site whose book page (/b/{id}) carries the whole chapter list, one chapter
// per line after the title: "{chapter id} {title}".
type toy struct{ base string }

func (toy) Info() site.Info {
	return site.Info{ID: "toy", Name: "Toy", DefaultBaseURL: "http://toy.example", BookIDPattern: `[a-z]+-[0-9]+`, CategoryIDPattern: `[a-z]+`}
}
func (toy) CanonicalBookID(id string) bool {
	a, b, ok := strings.Cut(id, "-")
	return ok && a != "" && b != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyz") == "" && strings.Trim(b, "0123456789") == ""
}
func (toy) CanonicalCategoryID(id string) bool                  { return id != "" }
func (t toy) HomeURL() string                                   { return t.base + "/" }
func (t toy) ListingURL(c string, p int) string                 { return fmt.Sprintf("%s/c/%s/%d", t.base, c, p) }
func (t toy) BookURL(id string) string                          { return t.base + "/b/" + id }
func (t toy) ChapterURL(id, ch string) string                   { return t.base + "/b/" + id + "/" + ch }
func (toy) ParseHome([]byte, *url.URL) ([]site.Category, error) { return nil, nil }
func (toy) ParseListing([]byte, *url.URL) ([]site.ListingBook, error) {
	return nil, nil
}
func (toy) ParseChapter(_ []byte, _ *url.URL, id, ch string) (*site.Chapter, error) {
	return &site.Chapter{BookID: id, ChapterID: ch, Text: "text"}, nil
}
func (t toy) ParseBook(body []byte, pageURL *url.URL, id string) (*site.Book, error) {
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	b := &site.Book{BookID: id, Name: lines[0], TOC: &site.TOCPage{BookID: id, Page: 1, TotalPages: 1}}
	for _, l := range lines[1:] {
		ch, title, _ := strings.Cut(l, " ")
		b.TOC.Chapters = append(b.TOC.Chapters, site.ChapterRef{Number: len(b.TOC.Chapters) + 1, ChapterID: ch, Title: title, URL: t.ChapterURL(id, ch)})
	}
	return b, nil
}

func toySite() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/b/ab-12" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "書 ab-12\nc1 第1章\nc2 第2章\nc3 第3章\n")
	})
}

type env struct {
	ns       *natstest.Server
	xsw, toy string // base URLs
	xswAsked *recorder
	toyAsked *recorder
}

func start(t *testing.T) *env {
	t.Helper()
	e := &env{ns: natstest.Start(t), xswAsked: &recorder{}, toyAsked: &recorder{}}
	xs := httptest.NewServer(e.xswAsked.wrap(xswSite()))
	t.Cleanup(xs.Close)
	ts := httptest.NewServer(e.toyAsked.wrap(toySite()))
	t.Cleanup(ts.Close)
	e.xsw, e.toy = xs.URL, ts.URL
	serve := func(id, raw string, src func(*url.URL) site.Source) *sites.Site {
		base, _ := url.Parse(raw)
		limiter := politeness.New(nil, "", politeness.Config{})
		return &sites.Site{ID: id, Source: src(base), Limiter: limiter, Client: source.New(base, limiter, source.Config{Timeout: 2 * time.Second})}
	}
	kv, err := e.ns.JS.KeyValue(t.Context(), events.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{NC: e.ns.Conn, JS: e.ns.JS, Logger: slog.New(slog.DiscardHandler), Checkpoints: checkpoint.Store{KV: kv},
		Sites: sites.NewSet(
			serve(xsw.ID, xs.URL, func(base *url.URL) site.Source { return xsw.New(base) }),
			serve("toy", ts.URL, func(base *url.URL) site.Source { return toy{base: base.String()} }),
		)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	// The subscriptions are live once a request finds a responder.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := e.ns.Conn.Request(events.RPCSubject(events.SubjectRPCListing, xsw.ID), []byte(`{}`), time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	return e
}

// call makes the call (a SubjectRPC* name) about the site req names, as a gateway does.
func call(t *testing.T, ns *natstest.Server, call string, req events.Payload, reply any) {
	t.Helper()
	b, _ := json.Marshal(req)
	var named struct{ Site string }
	_ = json.Unmarshal(b, &named)
	subject := events.RPCSubject(call, named.Site)
	m, err := ns.Conn.Request(subject, b, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := json.Unmarshal(m.Data, reply); err != nil {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
}

// published returns the payloads published on subjects matching filter, as "subject
// job_id page".
func published(t *testing.T, ns *natstest.Server, filter string) []string {
	t.Helper()
	c, err := ns.JS.OrderedConsumer(t.Context(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var p struct {
				JobID string `json:"job_id"`
				Page  int    `json:"page"`
			}
			_ = json.Unmarshal(m.Data(), &p)
			out = append(out, fmt.Sprintf("%s %s %d", m.Subject(), p.JobID, p.Page))
		}
		if n == 0 {
			return out
		}
	}
}

func TestCalls(t *testing.T) {
	t.Parallel()
	e := start(t)
	ns := e.ns
	h := events.Header{Version: events.Version}

	var cats events.CategoriesReply
	call(t, ns, events.SubjectRPCCategories, &events.CategoriesRequest{Header: h, Site: xsw.ID}, &cats)
	if cats.Error != nil || len(cats.Categories) != 2 || cats.Categories[0].ID != "1" || cats.Categories[0].Name != "玄幻小說" {
		t.Errorf("categories = %+v", cats)
	}
	if got := published(t, ns, events.SubjectFetchedCategories(xsw.ID)); len(got) != 1 {
		t.Errorf("categories published %v, want once on %s", got, events.SubjectFetchedCategories(xsw.ID))
	}

	var list events.ListingReply
	call(t, ns, events.SubjectRPCListing, &events.ListingRequest{Header: h, Site: xsw.ID, Category: "1", Page: 1}, &list)
	if list.Error != nil || len(list.Books) != 1 || list.Books[0].BookID != "1000001" || list.Books[0].BookURL != e.xsw+"/1000001/" {
		t.Errorf("listing = %+v", list)
	}

	var ch events.ChapterReply
	call(t, ns, events.SubjectRPCChapter, &events.ChapterRequest{Header: h, Site: xsw.ID, BookID: "1000001", ChapterID: "900002", Number: 2}, &ch)
	if ch.Error != nil || ch.Chapter == nil || ch.Chapter.Text != "第一段。\n第二段。" || ch.Chapter.Number != 2 || ch.Chapter.Site != xsw.ID {
		t.Errorf("chapter = %+v", ch)
	}
	// The text also goes to the indexer.
	deadline := time.Now().Add(5 * time.Second)
	for len(published(t, ns, events.SubjectFetchedChapter(xsw.ID, "1000001"))) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("chapter text was not published for the indexer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.xswAsked.take()

	errorsCases := []struct {
		name string
		req  events.Payload
		subj string
		want events.ErrorKind
	}{
		{"missing chapter", &events.ChapterRequest{Header: h, Site: xsw.ID, BookID: "1000001", ChapterID: "999", Number: 3}, events.SubjectRPCChapter, events.ErrKindNotFound},
		{"page without text", &events.ChapterRequest{Header: h, Site: xsw.ID, BookID: "1000001", ChapterID: "900003", Number: 3}, events.SubjectRPCChapter, events.ErrKindParse},
		{"bad request", &events.ChapterRequest{Header: h, Site: xsw.ID, BookID: "../etc", ChapterID: "1", Number: 1}, events.SubjectRPCChapter, events.ErrKindBadRequest},
		{"non-canonical book", &events.ChapterRequest{Header: h, Site: xsw.ID, BookID: "01000001", ChapterID: "900002", Number: 2}, events.SubjectRPCChapter, events.ErrKindBadRequest},
		{"listing page out of range", &events.ListingRequest{Header: h, Site: xsw.ID, Category: "1", Page: 0}, events.SubjectRPCListing, events.ErrKindBadRequest},
		{"non-canonical category", &events.ListingRequest{Header: h, Site: xsw.ID, Category: "01", Page: 1}, events.SubjectRPCListing, events.ErrKindBadRequest},
		{"refs of a non-canonical book", &events.ChapterRefsRequest{Header: h, Site: xsw.ID, BookID: "0123", From: 1, To: 2}, events.SubjectRPCRefs, events.ErrKindBadRequest},
		{"refs of a missing book", &events.ChapterRefsRequest{Header: h, Site: xsw.ID, BookID: "1000404", From: 1, To: 2}, events.SubjectRPCRefs, events.ErrKindNotFound},
	}
	for _, tt := range errorsCases {
		t.Run(tt.name, func(t *testing.T) {
			var r struct {
				Error *events.RPCError `json:"error"`
			}
			call(t, ns, tt.subj, tt.req, &r)
			if r.Error == nil || r.Error.Kind != tt.want {
				t.Errorf("error = %+v, want kind %s", r.Error, tt.want)
			}
		})
	}
	// A site this fetcher does not serve: it does not even listen, so the call goes to a
	// fetcher that does, or finds none.
	for _, call := range []string{events.SubjectRPCCategories, events.SubjectRPCListing, events.SubjectRPCChapter, events.SubjectRPCRefs} {
		if _, err := ns.Conn.Request(events.RPCSubject(call, "czbooks"), []byte(`{"version":2,"site":"czbooks"}`), time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("%s of a site not served: %v, want no responders", call, err)
		}
	}
	if got, want := e.xswAsked.take(), []string{"/1000001/999.html", "/1000001/900003.html", "/1000404/page-1.html"}; !cmp.Equal(got, want) {
		t.Errorf("site requests %v, want %v (none for a bad or non-canonical request)", got, want)
	}
}

// TestRefs asks for chapter refs as a waiting reader's gateway does: the fetcher fetches
// the pages that hold them by the site's own rules, and nothing else.
func TestRefs(t *testing.T) {
	t.Parallel()
	e := start(t)
	h := events.Header{Version: events.Version}
	tests := []struct {
		name      string
		site      string
		book      string
		from, to  int
		stored    events.StoredPages
		wantAsked []string
		wantRefs  string // numbers=ids
		wantPub   []string
	}{
		{
			name: "the last page only, page 1 stored", site: xsw.ID, book: "1000002", from: 9, to: 10,
			stored:    events.StoredPages{Pages: []int{1}, FirstPageRefs: 4, TotalPages: 3},
			wantAsked: []string{"/1000002/page-3.html"}, wantRefs: "9=9009 10=9010",
			wantPub: []string{"xsw.fetched.toc.xsw.1000002 read-xsw.1000002 3"},
		},
		{
			name: "page 1 first when nothing is stored", site: xsw.ID, book: "1000002", from: 5, to: 6,
			wantAsked: []string{"/1000002/page-1.html", "/1000002/page-2.html"}, wantRefs: "5=9005 6=9006",
			wantPub: []string{"xsw.fetched.toc.xsw.1000002 read-xsw.1000002 1", "xsw.fetched.toc.xsw.1000002 read-xsw.1000002 2"},
		},
		{
			name: "stored pages are not fetched", site: xsw.ID, book: "1000002", from: 3, to: 6,
			stored: events.StoredPages{Pages: []int{1, 2}, FirstPageRefs: 4, TotalPages: 3}, wantRefs: "",
		},
		{
			name: "nothing past the reported count", site: xsw.ID, book: "1000002", from: 11, to: 30,
			stored:    events.StoredPages{Pages: []int{1}, FirstPageRefs: 4, TotalPages: 3},
			wantAsked: []string{"/1000002/page-3.html"}, wantRefs: "",
			wantPub: []string{"xsw.fetched.toc.xsw.1000002 read-xsw.1000002 3"},
		},
		{
			name: "at most three pages out of turn", site: xsw.ID, book: "1000010", from: 1, to: 40,
			wantAsked: []string{"/1000010/page-1.html", "/1000010/page-2.html", "/1000010/page-3.html"},
			wantRefs:  "1=9001 2=9002 3=9003 4=9004 5=9005 6=9006 7=9007 8=9008 9=9009 10=9010 11=9011 12=9012",
			wantPub: []string{"xsw.fetched.toc.xsw.1000010 read-xsw.1000010 1", "xsw.fetched.toc.xsw.1000010 read-xsw.1000010 2",
				"xsw.fetched.toc.xsw.1000010 read-xsw.1000010 3"},
		},
		{
			name: "a one-page list costs one request", site: "toy", book: "ab-12", from: 2, to: 3,
			wantRefs: "2=c2 3=c3",
			wantPub:  []string{"xsw.fetched.book.toy.ab-12 read-toy.ab-12 0", "xsw.fetched.toc.toy.ab-12 read-toy.ab-12 1"},
		},
		{
			name: "a stored one-page list is not fetched again", site: "toy", book: "ab-12", from: 4, to: 9,
			stored: events.StoredPages{Pages: []int{1}, FirstPageRefs: 3, TotalPages: 1}, wantRefs: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(published(t, e.ns, "xsw.fetched.>"))
			var reply events.ChapterRefsReply
			call(t, e.ns, events.SubjectRPCRefs, &events.ChapterRefsRequest{Header: h, Site: tt.site, BookID: tt.book,
				From: tt.from, To: tt.to, Stored: tt.stored}, &reply)
			if reply.Error != nil {
				t.Fatalf("error %+v", reply.Error)
			}
			var refs []string
			for _, r := range reply.Refs {
				refs = append(refs, fmt.Sprintf("%d=%s", r.Number, r.ChapterID))
			}
			if got := strings.Join(refs, " "); got != tt.wantRefs {
				t.Errorf("refs %q, want %q", got, tt.wantRefs)
			}
			asked := e.xswAsked.take()
			if tt.site == "toy" {
				asked = e.toyAsked.take()
				if tt.wantPub != nil {
					tt.wantAsked = []string{"/b/" + tt.book}
				}
			}
			if !cmp.Equal(asked, tt.wantAsked, cmpopts.EquateEmpty()) {
				t.Errorf("site asked for %v, want %v", asked, tt.wantAsked)
			}
			var pub []string
			deadline := time.Now().Add(5 * time.Second)
			for {
				pub = published(t, e.ns, "xsw.fetched.>")[before:]
				if len(pub) >= len(tt.wantPub) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !cmp.Equal(pub, tt.wantPub, cmpopts.EquateEmpty()) {
				t.Errorf("published %v, want %v", pub, tt.wantPub)
			}
		})
	}
}

// TestRefsUsesTheCheckpoint: when the database holds nothing, the layout the last sync
// saw tells which page holds a chapter, so page 1 is not fetched first.
func TestRefsUsesTheCheckpoint(t *testing.T) {
	t.Parallel()
	e := start(t)
	kv, err := e.ns.JS.KeyValue(t.Context(), events.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	if err := (checkpoint.Store{KV: kv}).Save(t.Context(), xsw.ID, "1000010", checkpoint.Checkpoint{
		LastChapterID: "9040", Chapters: 40, TOCPages: 10, FirstPageRefs: 4, LastPageFirst: 37}); err != nil {
		t.Fatal(err)
	}
	var reply events.ChapterRefsReply
	call(t, e.ns, events.SubjectRPCRefs, &events.ChapterRefsRequest{Header: events.Header{Version: events.Version}, Site: xsw.ID,
		BookID: "1000010", From: 21, To: 22}, &reply)
	if reply.Error != nil || len(reply.Refs) != 2 || reply.Refs[0].Number != 21 || reply.Refs[0].ChapterID != "9021" {
		t.Errorf("reply %+v, want chapters 21 and 22", reply)
	}
	if got, want := e.xswAsked.take(), []string{"/1000010/page-6.html"}; !cmp.Equal(got, want) {
		t.Errorf("site asked for %v, want %v", got, want)
	}
}

// TestCallOfACallerGone: a call whose caller stopped waiting (its deadline header past)
// is dropped before anything is fetched; a live one is served.
func TestCallOfACallerGone(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.xswAsked.take()
	req := events.ChapterRequest{Header: events.Header{Version: events.Version}, Site: xsw.ID, BookID: "1000001", ChapterID: "900002", Number: 2}
	b, _ := json.Marshal(req)
	msg := nats.NewMsg(events.RPCSubject(events.SubjectRPCChapter, xsw.ID))
	msg.Data = b
	msg.Header.Set(events.HeaderDeadline, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano))
	if _, err := e.ns.Conn.RequestMsg(msg, 500*time.Millisecond); err == nil {
		t.Error("a call past its deadline was answered")
	}
	if got := e.xswAsked.take(); len(got) != 0 {
		t.Errorf("a call past its deadline reached the site: %v", got)
	}
	msg.Header.Set(events.HeaderDeadline, time.Now().Add(5*time.Second).UTC().Format(time.RFC3339Nano))
	if _, err := e.ns.Conn.RequestMsg(msg, 5*time.Second); err != nil {
		t.Fatalf("a live call: %v", err)
	}
	if got := e.xswAsked.take(); len(got) != 1 {
		t.Errorf("a live call asked the site %v, want one page", got)
	}
}

// TestRPCError: each failure becomes its kind of RPC error, and a busy site's answer says
// when to ask again, which the gateway passes on as the reader's Retry-After.
func TestRPCError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		kind       events.ErrorKind
		retryAfter float64
	}{
		{"not found", fmt.Errorf("get: %w", source.ErrNotFound), events.ErrKindNotFound, 0},
		{"refused", fmt.Errorf("wait: %w", &politeness.RefusedError{Reason: "HTTP 403"}), events.ErrKindRefused, 0},
		{"busy", fmt.Errorf("wait: %w", &politeness.BusyError{RetryAfter: 2500 * time.Millisecond}), events.ErrKindBusy, 2.5},
		{"timeout", context.DeadlineExceeded, events.ErrKindTimeout, 0},
		{"other", errors.New("boom"), events.ErrKindSource, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rpcError(tt.err)
			if got.Kind != tt.kind || got.RetryAfter != tt.retryAfter || got.Message != tt.err.Error() {
				t.Errorf("rpcError(%v) = %+v, want kind %s, retry after %v s", tt.err, got, tt.kind, tt.retryAfter)
			}
		})
	}
}
