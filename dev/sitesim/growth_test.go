package sitesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

func TestGrowth(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.MinChapters, cfg.MaxChapters = 40, 40 // two full TOC pages
	srv := startServer(t, cfg)
	s := srv.Site()
	c := newClient(t)
	before := s.Books()[1]

	f, err := fetch(t, c, http.MethodPost, srv.URL()+"/_sim/books/"+before.ID+"/grow?n=3", nil)
	if err != nil || f.status != http.StatusOK {
		t.Fatalf("grow: status %d, err %v: %s", f.status, err, f.body)
	}
	var grown BookInfo
	if err := json.Unmarshal(f.body, &grown); err != nil {
		t.Fatalf("decode grow answer: %v", err)
	}
	if grown.ChapterCount != 43 || grown.TOCPages != 3 || !grown.Updated.After(before.Updated) {
		t.Errorf("after growth: %d chapters, %d pages, updated %v (was %v)", grown.ChapterCount, grown.TOCPages, grown.Updated, before.Updated)
	}
	after, _ := s.Book(before.ID)
	for i, ch := range before.Chapters {
		if after.Chapters[i] != ch {
			t.Fatalf("chapter %d changed: %v -> %v", i+1, ch, after.Chapters[i])
		}
	}
	newest := after.Chapters[len(after.Chapters)-1]

	home := get(t, c, srv.URL()+"/"+before.ID+"/", 200).doc(t)
	if got := home.Find("div.block_txt2 p").FilterFunction(func(_ int, p *goquery.Selection) bool {
		return strings.HasPrefix(p.Text(), "最新：")
	}).Find("a").AttrOr("href", ""); got != newest.ID+".html" {
		t.Errorf("最新 links %q, want %q", got, newest.ID+".html")
	}
	if got := home.Find("ul.chapter > li > a").First().Text(); got != newest.Title {
		t.Errorf("newest in preview = %q, want %q", got, newest.Title)
	}
	wantUpdated := "更新：" + formatUpdated(after.Updated)
	if !slices.Contains(texts(home.Find("div.block_txt2 p")), wantUpdated) {
		t.Errorf("book home has no line %q", wantUpdated)
	}

	toc := get(t, c, srv.URL()+"/"+before.ID+"/page-3.html", 200).doc(t)
	var wantIDs []string
	for _, ch := range after.Chapters[40:] {
		wantIDs = append(wantIDs, ch.ID+".html")
	}
	var gotIDs []string
	for _, h := range attrs(toc.Find("div.cover > ul.chapter > li > a"), "href") {
		gotIDs = append(gotIDs, h[len(h)-len(wantIDs[0]):])
	}
	if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
		t.Errorf("page 3 lists %v, want %v", gotIDs, wantIDs)
	}
	if a := get(t, c, srv.URL()+"/"+before.ID+"/page-2.html", 200).doc(t).Find("div.page a.next"); a.Length() == 0 {
		t.Error("page 2 lost its next link after growth")
	}
	get(t, c, srv.URL()+"/"+before.ID+"/"+newest.ID+".html", 200)

	tests := []struct {
		name string
		path string
		want int
	}{
		{"unknown book", "/_sim/books/1/grow?n=1", 404},
		{"zero", "/_sim/books/" + before.ID + "/grow?n=0", 400},
		{"not a number", "/_sim/books/" + before.ID + "/grow?n=x", 400},
		{"too many", "/_sim/books/" + before.ID + "/grow?n=99999999", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := fetch(t, c, http.MethodPost, srv.URL()+tt.path, nil)
			if err != nil || f.status != tt.want {
				t.Errorf("status %d, err %v; want %d", f.status, err, tt.want)
			}
		})
	}
	if err := s.AddChapters("1", 1); !errors.Is(err, ErrUnknownBook) {
		t.Errorf("AddChapters(unknown) = %v, want ErrUnknownBook", err)
	}
}

func TestValidators(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.Validators = true
	srv := startServer(t, cfg)
	b := srv.Site().Books()[0]
	c := newClient(t)
	base := srv.URL() + "/" + b.ID + "/"

	for _, path := range []string{base, base + "page-1.html"} {
		t.Run(path[len(srv.URL()):], func(t *testing.T) {
			first := get(t, c, path, 200)
			etag, lastMod := first.header.Get("ETag"), first.header.Get("Last-Modified")
			if etag == "" || lastMod == "" {
				t.Fatalf("no validators: ETag %q, Last-Modified %q", etag, lastMod)
			}
			lm, err := http.ParseTime(lastMod)
			if err != nil {
				t.Fatalf("Last-Modified %q: %v", lastMod, err)
			}
			tests := []struct {
				name   string
				header http.Header
				want   int
			}{
				{"matching etag", http.Header{"If-None-Match": {etag}}, 304},
				{"etag in a list", http.Header{"If-None-Match": {`"x", ` + etag}}, 304},
				{"weak etag", http.Header{"If-None-Match": {"W/" + etag}}, 304},
				{"other etag", http.Header{"If-None-Match": {`"other"`}}, 200},
				{"etag wins over date", http.Header{"If-None-Match": {`"other"`}, "If-Modified-Since": {lastMod}}, 200},
				{"same date", http.Header{"If-Modified-Since": {lastMod}}, 304},
				{"later date", http.Header{"If-Modified-Since": {lm.Add(time.Hour).Format(http.TimeFormat)}}, 304},
				{"earlier date", http.Header{"If-Modified-Since": {lm.Add(-time.Second).Format(http.TimeFormat)}}, 200},
				{"bad date", http.Header{"If-Modified-Since": {"yesterday"}}, 200},
			}
			for _, tt := range tests {
				f, err := fetch(t, c, http.MethodGet, path, tt.header)
				if err != nil || f.status != tt.want {
					t.Errorf("%s: status %d, err %v; want %d", tt.name, f.status, err, tt.want)
				}
				if f.status == 304 && (len(f.body) != 0 || f.header.Get("ETag") != etag) {
					t.Errorf("%s: 304 with %d bytes, ETag %q", tt.name, len(f.body), f.header.Get("ETag"))
				}
			}

			if err := srv.Site().AddChapters(b.ID, 1); err != nil {
				t.Fatal(err)
			}
			for name, h := range map[string]http.Header{
				"old etag": {"If-None-Match": {etag}},
				"old date": {"If-Modified-Since": {lastMod}},
			} {
				f, err := fetch(t, c, http.MethodGet, path, h)
				if err != nil || f.status != 200 || f.header.Get("ETag") == etag {
					t.Errorf("after growth, %s: status %d, ETag %q, err %v; want 200 and a new ETag", name, f.status, f.header.Get("ETag"), err)
				}
			}
		})
	}

	ch := get(t, c, base+b.Chapters[0].ID+".html", 200)
	if ch.header.Get("ETag") != "" {
		t.Errorf("chapter page has an ETag")
	}

	cfg.Validators = false
	plain := New(cfg)
	rec := serve(t, plain, http.MethodGet, "/"+b.ID+"/")
	if rec.Header().Get("ETag") != "" || rec.Header().Get("Last-Modified") != "" {
		t.Errorf("validators sent while off")
	}
}

func TestCut(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.MinChapters, cfg.MaxChapters = 40, 40 // two full TOC pages
	srv := startServer(t, cfg)
	s := srv.Site()
	c := newClient(t)
	before := s.Books()[1]

	f, err := fetch(t, c, http.MethodPost, srv.URL()+"/_sim/books/"+before.ID+"/cut?keep=3", nil)
	if err != nil || f.status != http.StatusOK {
		t.Fatalf("cut: status %d, err %v: %s", f.status, err, f.body)
	}
	var cut BookInfo
	if err := json.Unmarshal(f.body, &cut); err != nil {
		t.Fatalf("decode cut answer: %v", err)
	}
	if cut.ChapterCount != 3 || cut.TOCPages != 1 || !cut.Updated.After(before.Updated) {
		t.Errorf("after the cut: %d chapters, %d pages, updated %v (was %v)", cut.ChapterCount, cut.TOCPages, cut.Updated, before.Updated)
	}
	after, _ := s.Book(before.ID)
	if !slices.Equal(after.Chapters, before.Chapters[:3]) {
		t.Errorf("chapters after the cut = %v, want the first 3 of %v", after.Chapters, before.Chapters)
	}
	toc := get(t, c, srv.URL()+"/"+before.ID+"/page-1.html", 200).doc(t)
	if n := toc.Find("div.cover > ul.chapter > li > a").Length(); n != 3 {
		t.Errorf("page 1 lists %d chapters after the cut, want 3", n)
	}
	get(t, c, srv.URL()+"/"+before.ID+"/"+before.Chapters[3].ID+".html", 404)
	get(t, c, srv.URL()+"/"+before.ID+"/"+before.Chapters[2].ID+".html", 200)

	tests := []struct {
		name string
		path string
		want int
	}{
		{"unknown book", "/_sim/books/1/cut?keep=1", 404},
		{"keep all", "/_sim/books/" + before.ID + "/cut?keep=3", 400},
		{"negative", "/_sim/books/" + before.ID + "/cut?keep=-1", 400},
		{"not a number", "/_sim/books/" + before.ID + "/cut?keep=x", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := fetch(t, c, http.MethodPost, srv.URL()+tt.path, nil)
			if err != nil || f.status != tt.want {
				t.Errorf("status %d, err %v; want %d", f.status, err, tt.want)
			}
		})
	}
}
