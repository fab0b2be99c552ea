package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/platform/natstest"
	"github.com/xswtw/xsw/services/fetcher/internal/politeness"
	"github.com/xswtw/xsw/services/fetcher/internal/site/xsw"
	"github.com/xswtw/xsw/services/fetcher/internal/source"
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

func start(t *testing.T) (*natstest.Server, *httptest.Server) {
	t.Helper()
	ns := natstest.Start(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, home) })
	mux.HandleFunc("/fenlei1_1.html", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, listing) })
	mux.HandleFunc("/1000001/900002.html", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, chapter) })
	mux.HandleFunc("/1000001/900003.html", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html><body>nothing</body></html>") })
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	base, _ := url.Parse(site.URL)
	s := &Server{NC: ns.Conn, JS: ns.JS, Site: xsw.New(base), Logger: slog.New(slog.DiscardHandler),
		Client: source.New(base, politeness.New(nil, "", politeness.Config{}), source.Config{Timeout: 2 * time.Second})}
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
		if _, err := ns.Conn.Request(events.SubjectRPCListing, []byte(`{}`), time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	return ns, site
}

func call(t *testing.T, ns *natstest.Server, subject string, req events.Payload, reply any) {
	t.Helper()
	b, _ := json.Marshal(req)
	m, err := ns.Conn.Request(subject, b, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := json.Unmarshal(m.Data, reply); err != nil {
		t.Fatalf("reply %s: %v", m.Data, err)
	}
}

func TestCalls(t *testing.T) {
	ns, site := start(t)
	h := events.Header{Version: events.Version}

	var cats events.CategoriesReply
	call(t, ns, events.SubjectRPCCategories, &events.CategoriesRequest{Header: h}, &cats)
	if cats.Error != nil || len(cats.Categories) != 2 || cats.Categories[0].Name != "玄幻小說" {
		t.Errorf("categories = %+v", cats)
	}

	var list events.ListingReply
	call(t, ns, events.SubjectRPCListing, &events.ListingRequest{Header: h, Category: 1, Page: 1}, &list)
	if list.Error != nil || len(list.Books) != 1 || list.Books[0].BookID != "1000001" || list.Books[0].BookURL != site.URL+"/1000001/" {
		t.Errorf("listing = %+v", list)
	}

	var ch events.ChapterReply
	call(t, ns, events.SubjectRPCChapter, &events.ChapterRequest{Header: h, BookID: "1000001", ChapterID: "900002", Number: 2}, &ch)
	if ch.Error != nil || ch.Chapter == nil || ch.Chapter.Text != "第一段。\n第二段。" || ch.Chapter.Number != 2 {
		t.Errorf("chapter = %+v", ch)
	}
	// The text also goes to the indexer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := ns.JS.Stream(t.Context(), events.StreamEvents)
		info, _ := s.Info(t.Context(), jetstreamSubjects(events.SubjectFetchedChapter("1000001")))
		if info != nil && info.State.Msgs >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chapter text was not published for the indexer")
		}
		time.Sleep(20 * time.Millisecond)
	}

	errorsCases := []struct {
		name string
		req  events.Payload
		subj string
		want events.ErrorKind
	}{
		{"missing chapter", &events.ChapterRequest{Header: h, BookID: "1000001", ChapterID: "999", Number: 3}, events.SubjectRPCChapter, events.ErrKindNotFound},
		{"page without text", &events.ChapterRequest{Header: h, BookID: "1000001", ChapterID: "900003", Number: 3}, events.SubjectRPCChapter, events.ErrKindParse},
		{"bad request", &events.ChapterRequest{Header: h, BookID: "../etc", ChapterID: "1", Number: 1}, events.SubjectRPCChapter, events.ErrKindBadRequest},
		{"listing out of range", &events.ListingRequest{Header: h, Category: 0, Page: 1}, events.SubjectRPCListing, events.ErrKindBadRequest},
		{"toc page without first number", &events.TOCRequest{Header: h, BookID: "1000001", Page: 2}, events.SubjectRPCTOC, events.ErrKindBadRequest},
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
}

func jetstreamSubjects(s string) jetstream.StreamInfoOpt { return jetstream.WithSubjectFilter(s) }
