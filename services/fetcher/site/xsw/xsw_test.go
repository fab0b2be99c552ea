package xsw

import (
	"net/url"
	"strings"
	"testing"

	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

func TestURLs(t *testing.T) {
	sitetest.RunURLCases(t, New, []sitetest.URLCase[*Source]{
		{Name: "home", Base: "https://m.xsw.tw", Got: (*Source).HomeURL, Want: "https://m.xsw.tw/"},
		{Name: "home trailing slash", Base: "https://m.xsw.tw/", Got: (*Source).HomeURL, Want: "https://m.xsw.tw/"},
		{Name: "home with prefix", Base: "http://127.0.0.1:8080/xsw/", Got: (*Source).HomeURL, Want: "http://127.0.0.1:8080/xsw/"},
		{Name: "home drops query", Base: "http://m.xsw.tw/?a=1#f", Got: (*Source).HomeURL, Want: "http://m.xsw.tw/"},
		{Name: "listing", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.ListingURL("3", 12) }, Want: "https://m.xsw.tw/fenlei3_12.html"},
		{Name: "listing page zero", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.ListingURL("1", 0) }, Want: "https://m.xsw.tw/fenlei1_1.html"},
		{Name: "book", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.BookURL("1721851") }, Want: "https://m.xsw.tw/1721851/"},
		{Name: "book on simulator", Base: "http://127.0.0.1:8080", Got: func(s *Source) string { return s.BookURL("1721851") }, Want: "http://127.0.0.1:8080/1721851/"},
		{Name: "toc", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.TOCURL("1721851", 71) }, Want: "https://m.xsw.tw/1721851/page-71.html"},
		{Name: "toc negative page", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.TOCURL("1721851", -3) }, Want: "https://m.xsw.tw/1721851/page-1.html"},
		{Name: "chapter", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.ChapterURL("1721851", "251856158") }, Want: "https://m.xsw.tw/1721851/251856158.html"},
		{Name: "chapter with prefix", Base: "http://127.0.0.1:8080/xsw", Got: func(s *Source) string { return s.ChapterURL("1", "2") }, Want: "http://127.0.0.1:8080/xsw/1/2.html"},
		{Name: "book id with slashes is replaced", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.BookURL("//evil.example/x") }, Want: "https://m.xsw.tw/__evil_example_x/"},
		{Name: "book id dot dot is replaced", Base: "https://m.xsw.tw/xsw", Got: func(s *Source) string { return s.BookURL("..") }, Want: "https://m.xsw.tw/xsw/__/"},
		{Name: "chapter id with query is replaced", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.ChapterURL("1", "2?x=@evil#") }, Want: "https://m.xsw.tw/1/2_x__evil_.html"},
		{Name: "empty book id", Base: "https://m.xsw.tw", Got: func(s *Source) string { return s.TOCURL("", 2) }, Want: "https://m.xsw.tw/_/page-2.html"},
		{Name: "ftp base is the default", Base: "ftp://m.xsw.tw", Got: (*Source).HomeURL, Want: "https://m.xsw.tw/"},
		{Name: "relative base is the default", Base: "/xsw", Got: (*Source).HomeURL, Want: "https://m.xsw.tw/"},
		{Name: "upper-case scheme", Base: "HTTP://m.xsw.tw", Got: (*Source).HomeURL, Want: "http://m.xsw.tw/"},
		{Name: "nil base is the default", Base: "", Got: (*Source).HomeURL, Want: "https://m.xsw.tw/"},
	})
}

func FuzzURLs(f *testing.F) {
	for _, id := range []string{"1721851", "", ".", "..", "../..", "//evil", "a/b", "?q", "#f", "%2e%2e", `\evil`, "@evil.example", "第一章"} {
		f.Add(id, "251856158", 1)
	}
	base, _ := url.Parse("http://127.0.0.1:8080/xsw")
	s := New(base)
	f.Fuzz(func(t *testing.T, bookID, chapterID string, page int) {
		sitetest.CheckOnBase(t, base, s.BookURL(bookID))
		sitetest.CheckOnBase(t, base, s.TOCURL(bookID, page))
		sitetest.CheckOnBase(t, base, s.ChapterURL(bookID, chapterID))
		sitetest.CheckOnBase(t, base, s.ListingURL(bookID, page))
	})
}

func TestNewBadHost(t *testing.T) {
	s := New(&url.URL{Scheme: "http", Host: "bad host"})
	if got, want := s.HomeURL(), DefaultBaseURL+"/"; got != want {
		t.Errorf("HomeURL() = %q; want %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	const (
		notFound = `<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1><hr><center>nginx</center></body></html>`
		head     = `<!DOCTYPE html><html><head><meta charset=big5><title>台灣小說網</title></head><body>`
	)
	tests := []struct {
		name string
		c    sitetest.Case
		body string
		what string // a part of the error message
	}{
		{
			name: "home without category links",
			c:    sitetest.Case{Kind: pageHome, URL: "https://m.xsw.tw/"},
			body: head + `<div class="nav"><a href="/">首頁</a><a href="/fenlei1_2.html">玄幻</a></div></body></html>`,
			what: "no category links",
		},
		{
			name: "listing with an empty body",
			c:    sitetest.Case{Kind: pageListing, URL: "https://m.xsw.tw/fenlei1_1.html"},
			body: `<html><head><meta charset=big5></head><body>  </body></html>`,
			what: "empty page",
		},
		{
			name: "listing of nothing",
			c:    sitetest.Case{Kind: pageListing, URL: "https://m.xsw.tw/fenlei1_1.html"},
			body: "",
			what: "empty page",
		},
		{
			name: "listing boxes without title links",
			c:    sitetest.Case{Kind: pageListing, URL: "https://m.xsw.tw/fenlei1_1.html"},
			body: head + `<div class="bookbox"><div class="bookinfo"><div class="author">作者：某人</div></div></div></body></html>`,
			what: "no book title link",
		},
		{
			name: "book without title",
			c:    sitetest.Case{Kind: pageBook, URL: "https://m.xsw.tw/1721851/", BookID: "1721851"},
			body: head + `<div class="block"><div class="block_txt2"><p>作者：某人</p></div></div></body></html>`,
			what: "no book title",
		},
		{
			name: "book with an empty title",
			c:    sitetest.Case{Kind: pageBook, URL: "https://m.xsw.tw/1721851/", BookID: "1721851"},
			body: head + `<div class="block_txt2"><h2> <a href="/1721851/"></a> </h2></div></body></html>`,
			what: "no book title",
		},
		{
			name: "book page that is a 404 page",
			c:    sitetest.Case{Kind: pageBook, URL: "https://m.xsw.tw/1721851/", BookID: "1721851"},
			body: notFound,
			what: "no book title",
		},
		{
			name: "toc without structure",
			c:    sitetest.Case{Kind: pageTOC, URL: "https://m.xsw.tw/1721851/page-1.html", BookID: "1721851", Page: 1, First: 1},
			body: notFound,
			what: "no table of contents",
		},
		{
			name: "toc with links but no structure",
			c:    sitetest.Case{Kind: pageTOC, URL: "https://m.xsw.tw/1721851/page-1.html", BookID: "1721851", Page: 1, First: 1},
			body: head + `<ul><li><a href="/1721851/251000001.html">第一章</a></li></ul></body></html>`,
			what: "no table of contents",
		},
		{
			name: "chapter without text container",
			c:    sitetest.Case{Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251000001.html", BookID: "1721851", ChapterID: "251000001"},
			body: head + `<div id="nr_title">第一章</div></body></html>`,
			what: "no chapter text",
		},
		{
			name: "chapter with only ads in its container",
			c:    sitetest.Case{Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251000001.html", BookID: "1721851", ChapterID: "251000001"},
			body: head + `<div id="nr1"><p>台灣小說網 www.xsw.tw</p><p>&gt;&gt;章節報錯&lt;&lt;</p></div></body></html>`,
			what: "chapter text empty in #nr1",
		},
		{
			name: "chapter page that is a 404 page",
			c:    sitetest.Case{Kind: pageChapter, URL: "https://m.xsw.tw/1721851/251000001.html", BookID: "1721851", ChapterID: "251000001"},
			body: notFound,
			what: "no chapter text",
		},
	}
	s := New(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Parse(s, []byte(tt.body), sitetest.MustURL(t, tt.c.URL))
			sitetest.WantParseError(t, got, err, tt.c.Kind, tt.c.URL, tt.what)
		})
	}
}

// TestParseTolerance covers pages that lack optional pieces or carry them in
// unexpected forms: they parse, with the missing fields empty.
func TestParseTolerance(t *testing.T) {
	s := New(nil)
	head := `<!DOCTYPE html><html><head><meta charset=big5><title>台灣小說網</title></head><body>`
	pageURL := sitetest.MustURL(t, "https://m.xsw.tw/1721851/251000001.html")

	t.Run("chapter falls back from an empty nr1", func(t *testing.T) {
		body := head + `<div id="nr1"> </div><div id="content">正文第一段<br>正文第二段</div></body></html>`
		c, err := s.ParseChapter([]byte(body), pageURL, "1721851", "251000001")
		if err != nil {
			t.Fatalf("ParseChapter: %v", err)
		}
		if want := "正文第一段\n正文第二段"; c.Text != want {
			t.Errorf("Text = %q; want %q", c.Text, want)
		}
		if c.Title != "" {
			t.Errorf("Title = %q; want empty (no #nr_title, no 第…章 in <title>)", c.Title)
		}
	})

	t.Run("chapter keeps long lines naming the site", func(t *testing.T) {
		long := "他想起了那個叫台灣小說網的地方，" + strings.Repeat("風雪漫天，", 20)
		body := head + `<div id="nr1"><p>` + long + `</p></div></body></html>`
		c, err := s.ParseChapter([]byte(body), pageURL, "1721851", "251000001")
		if err != nil {
			t.Fatalf("ParseChapter: %v", err)
		}
		if c.Text != long {
			t.Errorf("Text = %q; want the long line kept", c.Text)
		}
	})

	t.Run("book with a bad update time", func(t *testing.T) {
		body := head + `<div class="block_txt2"><h2>書名</h2><p>更新：昨天</p><p>狀態:連載中</p></div></body></html>`
		b, err := s.ParseBook([]byte(body), sitetest.MustURL(t, "https://m.xsw.tw/1721851/"), "1721851")
		if err != nil {
			t.Fatalf("ParseBook: %v", err)
		}
		if b.UpdateText != "昨天" || b.UpdatedAt != nil {
			t.Errorf("UpdateText, UpdatedAt = %q, %v; want 昨天, nil", b.UpdateText, b.UpdatedAt)
		}
		if b.Status != "連載中" || b.Finished {
			t.Errorf("Status, Finished = %q, %v; want 連載中, false", b.Status, b.Finished)
		}
		if b.Preview == nil {
			t.Error("Preview is nil; want an empty list")
		}
	})

	t.Run("listing book link with a non-canonical id", func(t *testing.T) {
		body := head + `<div class="bookbox"><div class="bookinfo"><h4 class="bookname"><a href="/01721851/">書名</a></h4></div></div></body></html>`
		books, err := s.ParseListing([]byte(body), sitetest.MustURL(t, "https://m.xsw.tw/fenlei1_1.html"))
		if err != nil {
			t.Fatalf("ParseListing: %v", err)
		}
		if len(books) != 1 || books[0].BookID != "" || books[0].BookURL != "https://m.xsw.tw/01721851/" {
			t.Errorf("got %+v; want the book without an id (01721851 names none)", books)
		}
	})

	t.Run("home category ids lose leading zeros", func(t *testing.T) {
		body := head + `<a href="/fenlei01_1.html">玄幻</a><a href="/fenlei1_1.html">玄幻小說</a><a href="/fenlei0_1.html">無</a></body></html>`
		cats, err := s.ParseHome([]byte(body), sitetest.MustURL(t, "https://m.xsw.tw/"))
		if err != nil {
			t.Fatalf("ParseHome: %v", err)
		}
		if len(cats) != 1 || cats[0].ID != "1" || cats[0].Name != "玄幻小說" {
			t.Errorf("got %+v; want category 1 once, and no category 0", cats)
		}
	})

	t.Run("toc with links outside any list", func(t *testing.T) {
		body := head + `<div class="page">(第1/1頁)</div><a href="/1721851/251000001.html">第一章</a></body></html>`
		toc, err := s.ParseTOC([]byte(body), sitetest.MustURL(t, "https://m.xsw.tw/1721851/page-1.html"), "1721851", 1, 1)
		if err != nil {
			t.Fatalf("ParseTOC: %v", err)
		}
		if len(toc.Chapters) != 0 || toc.TotalPages != 1 || toc.HasNext {
			t.Errorf("got %+v; want an empty last page", toc)
		}
	})
}
