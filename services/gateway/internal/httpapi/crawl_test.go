package httpapi

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/xswtw/xsw/api"
	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/gateway/internal/jobs"
)

func TestParseRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "1-7", want: "[1 2 3 4 5 6 7]"},
		{in: "3", want: "[3]"},
		{in: "5-6,1,3,5", want: "[1 3 5 6]"},
		{in: " 2 - 3 ", wantErr: true},
		{in: "0-3", wantErr: true},
		{in: "7-1", wantErr: true},
		{in: "1-100", wantErr: true},
		{in: "a", wantErr: true},
		{in: "", wantErr: true},
		{in: "1-", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseRange(tt.in, 1, 99)
		if (err != nil) != tt.wantErr || (!tt.wantErr && fmt.Sprint(got) != tt.want) {
			t.Errorf("parseRange(%q) = %v, %v; want %s (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestCrawlProgress follows a crawl as the API reports it: waiting until a fetcher starts
// it, then its progress as the fetcher writes it, in the list of crawls and in the admin
// statistics too.
func TestCrawlProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.admin(http.MethodPost, "/xsw/api/admin/crawl/categories?categories=1-2&pages=1-3")
	expect(t, r, http.StatusAccepted)
	var q api.CrawlQueued
	r.decode(t, &q)
	if q.Status != "queued" || q.Site != "xsw" || q.Pages != 6 || q.FromPage != 1 || q.ToPage != 3 || len(q.Categories) != 2 {
		t.Errorf("queued %s", r.body)
	}
	path := "/xsw/api/admin/crawl/" + q.CrawlID
	r = e.admin(http.MethodGet, path)
	expect(t, r, http.StatusOK)
	var waiting events.CrawlProgress
	r.decode(t, &waiting)
	if waiting.State != jobs.CrawlWaiting || waiting.Request.CrawlID != q.CrawlID {
		t.Errorf("waiting crawl %s", r.body)
	}

	// A fetcher starts it and writes its progress.
	now := time.Now().UTC()
	p := events.CrawlProgress{Header: events.Header{Version: events.Version}, Request: waiting.Request, State: events.CrawlRunning,
		Next: 3, PagesTotal: 6, PagesDone: 2, Ended: []events.CategoryID{"2"}, BooksQueued: 40, BooksSeen: 41,
		Errors: []string{"category 1 page 3: source answered 503"}, StartedAt: now, UpdatedAt: now}
	data, err := events.Encode(&p)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.ns.JS.KeyValue(t.Context(), events.BucketCrawls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), q.CrawlID, data); err != nil {
		t.Fatal(err)
	}
	r = e.admin(http.MethodGet, path)
	expect(t, r, http.StatusOK)
	var got events.CrawlProgress
	r.decode(t, &got)
	if got.State != events.CrawlRunning || got.PagesDone != 2 || got.BooksQueued != 40 || len(got.Errors) != 1 {
		t.Errorf("running crawl %s", r.body)
	}
	r = e.admin(http.MethodGet, "/xsw/api/admin/crawl")
	expect(t, r, http.StatusOK)
	var list []events.CrawlProgress
	r.decode(t, &list)
	if len(list) != 1 || list[0].Request.CrawlID != q.CrawlID {
		t.Errorf("crawls %s", r.body)
	}
	r = e.admin(http.MethodGet, "/xsw/api/admin/stats")
	expect(t, r, http.StatusOK)
	var stats api.AdminStats
	r.decode(t, &stats)
	if len(stats.Crawls) != 1 || stats.Crawls[0].PagesDone != 2 {
		t.Errorf("stats list crawls %+v", stats.Crawls)
	}
}
