package czbooks

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/xswtw/xsw/services/fetcher/site"
	"github.com/xswtw/xsw/services/fetcher/site/sitetest"
)

func TestURLs(t *testing.T) {
	sitetest.RunURLCases(t, New, []sitetest.URLCase[*Source]{
		{Name: "home", Base: "https://czbooks.net", Got: (*Source).HomeURL, Want: "https://czbooks.net/"},
		{Name: "home trailing slash", Base: "https://czbooks.net/", Got: (*Source).HomeURL, Want: "https://czbooks.net/"},
		{Name: "home on stand-in", Base: "http://127.0.0.1:8080", Got: (*Source).HomeURL, Want: "http://127.0.0.1:8080/"},
		{Name: "home with prefix", Base: "http://host/prefix/", Got: (*Source).HomeURL, Want: "http://host/prefix/"},
		{Name: "home drops query", Base: "http://czbooks.net/?a=1#f", Got: (*Source).HomeURL, Want: "http://czbooks.net/"},
		{Name: "listing page 1", Base: "https://czbooks.net", Got: func(s *Source) string { return s.ListingURL("xuanhuan", 1) }, Want: "https://czbooks.net/c/xuanhuan"},
		{Name: "listing page 2", Base: "https://czbooks.net", Got: func(s *Source) string { return s.ListingURL("xuanhuan", 2) }, Want: "https://czbooks.net/c/xuanhuan/2"},
		{Name: "listing page 0 is page 1", Base: "https://czbooks.net", Got: func(s *Source) string { return s.ListingURL("yanqing", 0) }, Want: "https://czbooks.net/c/yanqing"},
		{Name: "listing with prefix", Base: "http://host/prefix", Got: func(s *Source) string { return s.ListingURL("dushi", 12) }, Want: "http://host/prefix/c/dushi/12"},
		{Name: "book", Base: "https://czbooks.net", Got: func(s *Source) string { return s.BookURL("cr382b") }, Want: "https://czbooks.net/n/cr382b"},
		{Name: "book on stand-in", Base: "http://127.0.0.1:8080", Got: func(s *Source) string { return s.BookURL("s660jj") }, Want: "http://127.0.0.1:8080/n/s660jj"},
		{Name: "book id with leading zero kept", Base: "https://czbooks.net", Got: func(s *Source) string { return s.BookURL("0123") }, Want: "https://czbooks.net/n/0123"},
		{Name: "book id case kept", Base: "https://czbooks.net", Got: func(s *Source) string { return s.BookURL("Ab_9-z") }, Want: "https://czbooks.net/n/Ab_9-z"},
		{Name: "chapter", Base: "https://czbooks.net", Got: func(s *Source) string { return s.ChapterURL("cr382b", "crdic") }, Want: "https://czbooks.net/n/cr382b/crdic"},
		{Name: "chapter with prefix", Base: "http://host/prefix/", Got: func(s *Source) string { return s.ChapterURL("cr382b", "0001") }, Want: "http://host/prefix/n/cr382b/0001"},
		{Name: "book id with slashes is replaced", Base: "https://czbooks.net", Got: func(s *Source) string { return s.BookURL("//evil.example/x") }, Want: "https://czbooks.net/n/__evil_example_x"},
		{Name: "book id dot dot is replaced", Base: "http://host/prefix", Got: func(s *Source) string { return s.BookURL("..") }, Want: "http://host/prefix/n/__"},
		{Name: "chapter id with query is replaced", Base: "https://czbooks.net", Got: func(s *Source) string { return s.ChapterURL("cr382b", "x?y=@evil#") }, Want: "https://czbooks.net/n/cr382b/x_y__evil_"},
		{Name: "slug with slash is replaced", Base: "https://czbooks.net", Got: func(s *Source) string { return s.ListingURL("../n", 3) }, Want: "https://czbooks.net/c/___n/3"},
		{Name: "empty book id", Base: "https://czbooks.net", Got: func(s *Source) string { return s.BookURL("") }, Want: "https://czbooks.net/n/_"},
		{Name: "ftp base is the default", Base: "ftp://czbooks.net", Got: (*Source).HomeURL, Want: "https://czbooks.net/"},
		{Name: "relative base is the default", Base: "/czbooks", Got: (*Source).HomeURL, Want: "https://czbooks.net/"},
		{Name: "upper-case scheme", Base: "HTTP://czbooks.net", Got: (*Source).HomeURL, Want: "http://czbooks.net/"},
		{Name: "nil base is the default", Base: "", Got: (*Source).HomeURL, Want: "https://czbooks.net/"},
	})
}

func FuzzURLs(f *testing.F) {
	for _, id := range []string{"cr382b", "0123", "", ".", "..", "../..", "//evil", "a/b", "?q", "#f", "%2e%2e", `\evil`, "@evil.example", "第一章"} {
		f.Add(id, "crdic", 1)
	}
	base, _ := url.Parse("http://127.0.0.1:8080/cz")
	s := New(base)
	f.Fuzz(func(t *testing.T, bookID, chapterID string, page int) {
		sitetest.CheckOnBase(t, base, s.BookURL(bookID))
		sitetest.CheckOnBase(t, base, s.ChapterURL(bookID, chapterID))
		sitetest.CheckOnBase(t, base, s.ListingURL(bookID, page))
	})
}

func TestAdapter(t *testing.T) {
	a := Adapter()
	sitetest.CheckAdapter(t, a, "http://127.0.0.1:8080/cz/", false)
	if a.Info.ID != ID || a.Info.Name != "小說狂人 (czbooks.net)" || a.Info.DefaultBaseURL != DefaultBaseURL {
		t.Errorf("info %+v", a.Info)
	}
}

// head is the start of a hand-written page for the inline cases.
const head = `<!DOCTYPE html><html lang="zh-Hant-TW"><head><meta charset="utf-8"><title>小說狂人</title></head><body>`

func TestParseErrors(t *testing.T) {
	const notFound = `<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1><hr><center>nginx</center></body></html>`
	const challenge = `<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body><h1>czbooks.net</h1>` +
		`<div>Performance &amp; security by <a href="https://www.cloudflare.com">Cloudflare</a></div></body></html>`
	const book = `<div class="novel-detail"><div class="info"><span class="title">《劍來》</span></div>`
	bookCase := sitetest.Case{Kind: pageBook, URL: testBase + "/n/cr382b", BookID: "cr382b"}
	listingCase := sitetest.Case{Kind: pageListing, URL: testBase + "/c/xuanhuan/2"}
	chapterCase := sitetest.Case{Kind: pageChapter, URL: testBase + "/n/cr382b/crdic", BookID: "cr382b", ChapterID: "crdic"}
	tests := []struct {
		name string
		c    sitetest.Case
		body string
		what string // a part of the error message: the selector
	}{
		{name: "home without category links", c: sitetest.Case{Kind: pageHome, URL: testBase + "/"},
			body: head + `<ul class="nav menu"><li><a href="/">首頁</a></li><li><a href="/c/xuanhuan/2">玄幻</a></li><li><a href="//other.example/c/x">x</a></li></ul></body></html>`,
			what: "no category links"},
		{name: "home that is a 404 page", c: sitetest.Case{Kind: pageHome, URL: testBase + "/"}, body: notFound, what: "/c/{slug}"},
		{name: "listing that is a book page", c: listingCase,
			body: head + `<ul class="nav menu"><li><a href="/c/xuanhuan">玄幻</a></li></ul>` + book + `</div></body></html>`, what: "div.novel-detail"},
		{name: "listing that is a chapter page", c: listingCase,
			body: head + `<div class="chapter-detail"><div class="name">第一章</div><div class="content">正文</div></div></body></html>`,
			what: "not a listing page"},
		{name: "listing that is a book page with items without book links", c: listingCase,
			body: head + book + `<div class="novel-item"><a href="/c/xuanhuan">玄幻</a></div></div></body></html>`,
			what: "not a listing page"},
		{name: "book without div.novel-detail", c: bookCase,
			body: head + `<div class="info"><span class="title">《劍來》</span></div><ul class="chapter-list"><li><a href="/n/cr382b/a">第一章</a></li></ul></body></html>`,
			what: "no book details (div.novel-detail)"},
		{name: "book that is a 404 page", c: bookCase, body: notFound, what: "div.novel-detail"},
		{name: "book that is a challenge page", c: bookCase, body: challenge, what: "div.novel-detail"},
		{name: "book without title", c: bookCase,
			body: head + `<div class="novel-detail"><div class="info"><span class="author"><a>某人</a></span></div><ul class="chapter-list"></ul></div></body></html>`,
			what: "no book title (div.novel-detail .info .title)"},
		{name: "book with only brackets for a title", c: bookCase,
			body: head + `<div class="novel-detail"><div class="info"><span class="title">《 》</span></div><ul class="chapter-list"></ul></div></body></html>`,
			what: "no book title"},
		{name: "book without a chapter list", c: bookCase,
			body: head + book + `<ul class="chapters"><li><a href="/n/cr382b/a">第一章</a></li></ul></div></body></html>`,
			what: "no chapter list (ul.chapter-list)"},
		{name: "book whose chapter links all name another book", c: bookCase,
			body: head + book + `<ul class="chapter-list"><li><a href="/n/s660jj/a">第一章</a></li><li><a href="//czbooks.net/n/s660jj/b">第二章</a></li></ul></div></body></html>`,
			what: "ul.chapter-list: 2 li with links, none to a chapter of book cr382b (/n/cr382b/{chapter})"},
		{name: "book whose chapter links all have another form", c: bookCase,
			body: head + book + `<ul class="chapter-list"><li><a href="/n/cr382b/1.html">第一章</a></li>` +
				`<li><a href="/book/cr382b/2">第二章</a></li><li><a href="https://other.example/n/cr382b/3">第三章</a></li></ul></div></body></html>`,
			what: "3 li with links, none to a chapter of book cr382b"},
		{name: "book whose only chapter links are in volume headers", c: bookCase,
			body: head + book + `<ul class="chapter-list"><li class="volume"><a href="/n/cr382b/a">第一卷</a></li>` +
				`<li><a href="/n/cr382b/">目錄</a></li></ul></div></body></html>`,
			what: "1 li with links, none to a chapter of book cr382b"},
		{name: "chapter without content", c: chapterCase,
			body: head + `<div class="chapter-detail"><div class="name">第四章</div><div class="text">正文</div></div></body></html>`,
			what: "no chapter text (.chapter-detail div.content)"},
		{name: "chapter content outside chapter-detail", c: chapterCase,
			body: head + `<div class="name">第四章</div><div class="content">正文</div></body></html>`,
			what: "no chapter text (.chapter-detail div.content)"},
		{name: "chapter with only ads in its content", c: chapterCase,
			body: head + `<div class="chapter-detail"><div class="content"><div class="ad">廣告</div><ins>廣告</ins><p>小說狂人 CZBOOKS.NET</p><p>　&nbsp;</p></div></div></body></html>`,
			what: "chapter text empty in .chapter-detail div.content"},
		{name: "chapter with only navigation in its content", c: chapterCase,
			body: head + `<div class="chapter-detail"><div class="content"><a href="/n/cr382b/crdib">上一章</a> | <a href="/n/cr382b">目錄</a><br>下一章</div></div></body></html>`,
			what: "chapter text empty in .chapter-detail div.content"},
		{name: "chapter that is a 404 page", c: chapterCase, body: notFound, what: ".chapter-detail div.content"},
	}
	s := New(sitetest.MustURL(t, testBase))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Parse(s, []byte(tt.body), sitetest.MustURL(t, tt.c.URL))
			sitetest.WantParseError(t, got, err, tt.c.Kind, tt.c.URL, tt.what)
		})
	}
}

// TestParseListingPastEnd: a page that is neither a listing with books nor a book or
// chapter page ends the category: an empty list and no error, never a ParseError that
// the API would answer with a 5xx. The saved pages listing_past_end.html,
// listing_none_notice.html, listing_pagination_only.html and listing_empty_nomenu.html
// are the golden cases of the same rule.
func TestParseListingPastEnd(t *testing.T) {
	const challenge = `<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body><h1>czbooks.net</h1>` +
		`<div>Performance &amp; security by <a href="https://www.cloudflare.com">Cloudflare</a></div></body></html>`
	tests := []struct{ name, body string }{
		{name: "nothing", body: ""},
		{name: "an empty body", body: `<html><body> </body></html>`},
		{name: "a notice without the site's layout", body: head + `<p>沒有作品</p></body></html>`},
		{name: "a maintenance page", body: head + `<div class="notice">網站維護中，請稍後再訪問。</div></body></html>`},
		// The source client refuses a challenge page before it is parsed (a 403, or
		// its title): the parser sees only a page without books.
		{name: "a challenge page", body: challenge},
		{name: "only pagination", body: head + `<a href="//czbooks.net/c/xuanhuan/10">上一頁</a> <a href="/">首頁</a></body></html>`},
		{name: "an empty list without a menu", body: head + `<ul class="nav novel-list"></ul></body></html>`},
		{name: "items linking to another host", body: head + `<ul><li class="novel-item-wrapper"><div class="novel-item"><div class="novel-item-title">書</div>` +
			`<div class="novel-item-cover-wrapper"><a href="https://other.example/n/x">書</a></div></div></li></ul></body></html>`},
		{name: "items linking to a later page and an author", body: head + `<div class="novel-item"><div class="novel-item-cover-wrapper">` +
			`<a href="//czbooks.net/c/xuanhuan/10"><div class="novel-item-title">上一頁</div></a></div>` +
			`<div class="novel-item-author"><a href="//czbooks.net/a/someone">某人</a></div></div></body></html>`},
		{name: "items without links", body: head + `<ul class="nav novel-list"><li class="novel-item-wrapper"><div class="novel-item">` +
			`<div class="novel-item-title">書</div><a href="javascript:void(0)">收藏</a><a href="#top">頂部</a></div></li></ul></body></html>`},
	}
	s := New(sitetest.MustURL(t, testBase))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			books, err := s.ParseListing([]byte(tt.body), sitetest.MustURL(t, testBase+"/c/xuanhuan/11"))
			if err != nil || books == nil || len(books) != 0 {
				t.Errorf("ParseListing = %+v, %v; want an empty list and no error", books, err)
			}
		})
	}
}

// bookPage wraps a chapter list and the state table in a book page.
func bookPage(state, list string) []byte {
	return []byte(head + `<div class="novel-detail"><div class="info"><span class="title">《劍來》</span></div>` +
		`<div class="state"><table>` + state + `</table></div>` + list + `</div></body></html>`)
}

// TestParseBookRules covers the rules of the book page one at a time.
func TestParseBookRules(t *testing.T) {
	s := New(sitetest.MustURL(t, testBase))
	pageURL := sitetest.MustURL(t, testBase+"/n/cr382b")
	parse := func(t *testing.T, body []byte) *site.Book {
		t.Helper()
		b, err := s.ParseBook(body, pageURL, "cr382b")
		if err != nil {
			t.Fatalf("ParseBook: %v", err)
		}
		if b.TOC == nil || b.TOC.Page != 1 || b.TOC.TotalPages != 1 || b.TOC.HasNext || b.TOC.Chapters == nil {
			t.Fatalf("TOC = %+v; want page 1 of 1 with a list", b.TOC)
		}
		return b
	}
	ids := func(b *site.Book) []string {
		var out []string
		for i, c := range b.TOC.Chapters {
			if c.Number != i+1 {
				t.Errorf("chapter %s numbered %d; want %d", c.ChapterID, c.Number, i+1)
			}
			out = append(out, c.ChapterID)
		}
		return out
	}

	t.Run("empty chapter list is a book without chapters", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="nav chapter-list"></ul>`))
		if len(b.TOC.Chapters) != 0 || b.LastChapterID != "" || b.LastChapterURL != "" || b.LastChapterTitle != "" || b.Volumes != nil {
			t.Errorf("got %+v; want no chapters, no newest chapter", b)
		}
	})

	t.Run("list with only a volume header", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list"><li class="volume">第一卷</li></ul>`))
		want := []site.Volume{{Title: "第一卷", FirstChapter: 1}}
		if len(b.TOC.Chapters) != 0 || !cmp.Equal(b.Volumes, want) {
			t.Errorf("chapters %v, volumes %v; want none and %v", b.TOC.Chapters, b.Volumes, want)
		}
	})

	t.Run("volumes never count and may wrap links", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list">`+
			`<li class="volume"><a href="//czbooks.net/n/cr382b/a">第一卷 出山</a></li>`+
			`<li><a href="//czbooks.net/n/cr382b/a">第一章</a></li>`+
			`<li class="volume">  </li>`+
			`<li class="volume vip">第二卷 入世</li>`+
			`<li><a href="//czbooks.net/n/cr382b/b">第二章</a></li>`+
			`<li class="volume">第三卷 歸來</li>`+
			`</ul>`))
		want := []site.Volume{{Title: "第一卷 出山", FirstChapter: 1}, {Title: "第二卷 入世", FirstChapter: 2}, {Title: "第三卷 歸來", FirstChapter: 3}}
		if diff := cmp.Diff(want, b.Volumes); diff != "" {
			t.Errorf("volumes mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"a", "b"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("only direct children of the list", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list">`+
			`<li><a href="/n/cr382b/a">第一章</a><ul class="sub"><li><a href="/n/cr382b/z">子項</a></li></ul></li>`+
			`<li class="volume">第二卷<ul class="chapter-list"><li><a href="/n/cr382b/b">第二章</a></li></ul></li>`+
			`<li><span>第三章</span> <a href="javascript:void(0)">收藏</a> <a href="/n/cr382b/c">第三章 歸來</a></li>`+
			`</ul><ul><li><a href="/n/cr382b/d">第四章（清單外）</a></li></ul>`))
		if diff := cmp.Diff([]string{"a", "b", "c"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
		if want := []site.Volume{{Title: "第二卷", FirstChapter: 2}}; !cmp.Equal(b.Volumes, want) {
			t.Errorf("volumes %v; want %v", b.Volumes, want)
		}
		if c := b.TOC.Chapters[2]; c.Title != "第三章 歸來" || b.LastChapterID != "c" {
			t.Errorf("last chapter %+v, newest %s; want 第三章 歸來, c", c, b.LastChapterID)
		}
	})

	t.Run("duplicate chapter ids keep the first", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list">`+
			`<li><a href="/n/cr382b/a">第一章</a></li><li><a href="/n/cr382b/b">第二章</a></li>`+
			`<li><a href="//czbooks.net/n/cr382b/a?again=1">第一章（重複）</a></li><li><a href="/n/cr382b/c">第三章</a></li></ul>`))
		if diff := cmp.Diff([]string{"a", "b", "c"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
		if b.TOC.Chapters[0].Title != "第一章" {
			t.Errorf("first chapter %+v; want the first spelling kept", b.TOC.Chapters[0])
		}
	})

	t.Run("links that name no chapter of the book are skipped", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list">`+
			`<li><a href="/n/cr382b">目錄</a></li>`+
			`<li><a href="/n/other/a">別本書</a></li>`+
			`<li><a href="https://example.com/n/cr382b/x">外站</a></li>`+
			`<li><a href="/n/cr382b/bad.id">怪</a></li>`+
			`<li><a href="/n/cr382b/%61">跳脫</a></li>`+
			`<li><a href="/n/cr382b/a/b">太深</a></li>`+
			`<li><a>沒有連結</a></li>`+
			`<li><a href="/n/cr382b/ok">第一章</a></li></ul>`))
		if diff := cmp.Diff([]string{"ok"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("chapter links with a trailing slash", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list">`+
			`<li><a href="//czbooks.net/n/cr382b/0001/">第一章</a></li><li><a href="/n/cr382b/crdib/?from=list">第二章</a></li></ul>`))
		var urls []string
		for _, c := range b.TOC.Chapters {
			urls = append(urls, c.URL)
		}
		want := []string{testBase + "/n/cr382b/0001", testBase + "/n/cr382b/crdib?from=list"}
		if diff := cmp.Diff(want, urls); diff != "" {
			t.Errorf("chapter URLs mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"0001", "crdib"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
		if b.LastChapterURL != want[1] {
			t.Errorf("LastChapterURL = %q; want %q", b.LastChapterURL, want[1])
		}
	})

	t.Run("odd items skipped beside chapters of the book", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list">`+
			`<li><a href="/n/cr382b/a.html">怪</a></li><li><a href="/n/other/x">別本</a></li>`+
			`<li><a href="/n/cr382b/b">第二章</a></li></ul>`))
		if diff := cmp.Diff([]string{"b"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("items without links to pages are a book without chapters", func(t *testing.T) {
		b := parse(t, bookPage("", `<ul class="chapter-list"><li>第一章（即將上架）</li>`+
			`<li><a href="javascript:void(0)">第二章</a></li><li><a href="#top">頂部</a></li><li><a>第三章</a></li></ul>`))
		if len(b.TOC.Chapters) != 0 {
			t.Errorf("chapters %+v; want none", b.TOC.Chapters)
		}
	})

	t.Run("list outside div.novel-detail", func(t *testing.T) {
		body := head + `<div class="novel-detail"><div class="info"><span class="title">劍來</span></div></div>` +
			`<ul class="chapter-list"><li><a href="/n/cr382b/a">第一章</a></li></ul></body></html>`
		b := parse(t, []byte(body))
		if diff := cmp.Diff([]string{"a"}, ids(b)); diff != "" {
			t.Errorf("chapters mismatch (-want +got):\n%s", diff)
		}
	})

	statusTests := []struct {
		status   string
		finished bool
	}{
		{"連載中", false}, {"已完成", true}, {"完結", true}, {"已完結", true}, {"完结", true}, {"全本完結", true}, {"", false}, {"未完", false},
	}
	for _, tt := range statusTests {
		t.Run("status "+tt.status, func(t *testing.T) {
			b := parse(t, bookPage(`<tr><td>狀態：</td><td>`+tt.status+`</td></tr>`, `<ul class="chapter-list"></ul>`))
			if b.Status != tt.status || b.Finished != tt.finished {
				t.Errorf("Status, Finished = %q, %v; want %q, %v", b.Status, b.Finished, tt.status, tt.finished)
			}
		})
	}

	t.Run("state labels lose every space", func(t *testing.T) {
		b := parse(t, bookPage(`<tr><td> 狀　態 ： </td><td>連載中</td><td>最 後 更 新&nbsp;：</td><td> 2026-02-01 12:00 </td></tr>`+
			`<tr><td>状态：</td><td>不讀</td><td>更新時間：</td><td>不讀</td></tr><tr><td>單獨一格</td></tr>`, `<ul class="chapter-list"></ul>`))
		if b.Status != "連載中" || b.UpdateText != "2026-02-01 12:00" || b.UpdatedAt != nil {
			t.Errorf("Status, UpdateText, UpdatedAt = %q, %q, %v; want the first of each, raw, no time", b.Status, b.UpdateText, b.UpdatedAt)
		}
	})
}

// TestParseChapterNav: navigation inside div.content is no chapter text, but ordinary
// sentences using the same words are. chapter_nav_inside.html is the golden case.
func TestParseChapterNav(t *testing.T) {
	tests := []struct{ name, content, want string }{
		{name: "a nav bar of links", content: `<div class="nav"><a href="/n/cr382b/crdib">上一章</a> | <a href="/n/cr382b">目錄</a> | <a href="/n/cr382b/crdid">下一章</a></div><p>正文</p>`,
			want: "正文"},
		{name: "links in the text's own line", content: `正文<br><a href="/n/cr382b/crdib">上一章</a> ｜ <a href="/n/cr382b/crdid">下一章</a><br>尾`,
			want: "正文\n尾"},
		{name: "an inline container after text", content: `<p>正文結束。<span class="nav"><a href="#">上一章</a> · <a href="#">下一章</a></span></p>`,
			want: "正文結束。"},
		{name: "a link to the book keeps its text", content: `<p>第一段</p><p><a href="//czbooks.net/n/cr382b/">劍來</a></p><p>第二段</p>`,
			want: "第一段\n劍來\n第二段"},
		{name: "a link to another chapter inside a sentence keeps its text", content: `<p>請看<a href="/n/cr382b/crdia">第三章的伏筆</a>，就明白了。</p>`,
			want: "請看第三章的伏筆，就明白了。"},
		{name: "text wrapped in the next chapter's link", content: `<a href="/n/cr382b/crdid"><p>第一段正文。</p><p>第二段。</p></a>`,
			want: "第一段正文。\n第二段。"},
		{name: "a link to the chapter itself", content: `<p><a href="/n/cr382b/crdic">第三章 歸來</a></p><p>正文</p>`,
			want: "正文"},
		{name: "an icon link", content: `<p>正文</p><p><a href="/n/cr382b/crdid"><img src="/next.png"></a></p>`,
			want: "正文"},
		{name: "a next link with the next chapter's title", content: `<p>正文</p><p><a href="/n/cr382b/crdid">下一章：第四章 碎瓷</a></p>`,
			want: "正文"},
		{name: "a link marked next", content: `<p>正文</p><p><a rel="next" href="/n/cr382b/crdid">第四章 碎瓷</a> | <a href="/n/cr382b">返回</a></p>`,
			want: "正文"},
		{name: "dialogue of navigation words stays", content: `<p>「返回」</p><p>【返回】</p><p>「下一頁」</p><p>『目錄』</p>`,
			want: "「返回」\n【返回】\n「下一頁」\n『目錄』"},
		{name: "a link to another book stays", content: `<p>推薦閱讀：<a href="/n/s660jj">夜的命名術</a></p>`,
			want: "推薦閱讀：夜的命名術"},
		{name: "navigation words without links", content: `<p>正文</p><p>上一頁 | 目錄 | 下一頁</p><p>【返回目錄】</p><p>返回书页</p><p>« 上一章</p>`,
			want: "正文"},
		{name: "simplified navigation", content: `<p>正文</p><div><a>上一页</a> <a>目录</a> <a>下一页</a> <a>章节目录</a></div>`,
			want: "正文"},
		{name: "sentences using the words stay", content: `<p>他說：「上一章寫得太短，下一章再補。」</p><p>目錄上寫著第五章。</p><p>翻到下一頁</p>`,
			want: "他說：「上一章寫得太短，下一章再補。」\n目錄上寫著第五章。\n翻到下一頁"},
		{name: "links of other words stay", content: `<p><a href="/c/xuanhuan">玄幻</a>小說</p>`,
			want: "玄幻小說"},
		{name: "separators alone stay", content: `<p>第一段</p><p>——</p><p>* * *</p><p>第二段</p>`,
			want: "第一段\n——\n* * *\n第二段"},
		{name: "a container of text and links keeps its text", content: `<div>作者有話說：明天見<a href="/n/cr382b/crdid">下一章</a></div>`,
			want: "作者有話說：明天見"},
	}
	s := New(sitetest.MustURL(t, testBase))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := head + `<div class="chapter-detail"><div class="name">第三章</div><div class="content">` + tt.content + `</div></div></body></html>`
			c, err := s.ParseChapter([]byte(body), sitetest.MustURL(t, testBase+"/n/cr382b/crdic"), "cr382b", "crdic")
			if err != nil {
				t.Fatalf("ParseChapter: %v", err)
			}
			if c.Text != tt.want {
				t.Errorf("Text = %q; want %q", c.Text, tt.want)
			}
		})
	}
}

// TestParseTolerance covers pages that lack optional pieces or carry them in
// unexpected forms: they parse, with the missing fields empty.
func TestParseTolerance(t *testing.T) {
	s := New(sitetest.MustURL(t, testBase))

	t.Run("chapter without any title", func(t *testing.T) {
		body := head + `<h1>劍來</h1><div class="chapter-detail"><div class="content">正文第一段<br>正文第二段</div></div></body></html>`
		c, err := s.ParseChapter([]byte(body), sitetest.MustURL(t, testBase+"/n/cr382b/crdic"), "cr382b", "crdic")
		if err != nil {
			t.Fatalf("ParseChapter: %v", err)
		}
		if c.Title != "" || c.Text != "正文第一段\n正文第二段" || c.PrevURL != "" || c.NextURL != "" {
			t.Errorf("got %+v; want no title, two lines, no links", c)
		}
	})

	t.Run("chapter title in a linked h1 inside the content", func(t *testing.T) {
		body := head + `<div class="chapter-detail"><div class="content"><h1><a href="/n/cr382b/crdic">第三章 歸來</a></h1>` +
			`<p>正文</p><a href="/n/cr382b/crdid">下一章</a></div></div></body></html>`
		c, err := s.ParseChapter([]byte(body), sitetest.MustURL(t, testBase+"/n/cr382b/crdic"), "cr382b", "crdic")
		if err != nil {
			t.Fatalf("ParseChapter: %v", err)
		}
		want := &site.Chapter{BookID: "cr382b", ChapterID: "crdic", Title: "第三章 歸來", Text: "正文", NextURL: testBase + "/n/cr382b/crdid"}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("chapter mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("chapter navigation to the book page is no chapter", func(t *testing.T) {
		body := head + `<div class="chapter-detail"><div class="content">正文</div></div>` +
			`<a class="prev-chapter" href="//czbooks.net/n/cr382b">上一章</a><a href="//czbooks.net/n/other/x">下一章</a>` +
			`<a href="//czbooks.net/n/cr382b/crdid" class="next">»</a></body></html>`
		c, err := s.ParseChapter([]byte(body), sitetest.MustURL(t, testBase+"/n/cr382b/crdic"), "cr382b", "crdic")
		if err != nil {
			t.Fatalf("ParseChapter: %v", err)
		}
		if c.PrevURL != "" || c.NextURL != testBase+"/n/cr382b/crdid" {
			t.Errorf("PrevURL, NextURL = %q, %q; want none and crdid", c.PrevURL, c.NextURL)
		}
	})

	t.Run("chapter lines naming the site in any form", func(t *testing.T) {
		body := head + `<div class="chapter-detail"><div class="content"><p>第一段</p><p>請到ＣＺＢＯＯＫＳ閱讀</p>` +
			`<p>czBooks</p><p>cz books 不是站名</p><p>第二段</p></div></div></body></html>`
		c, err := s.ParseChapter([]byte(body), sitetest.MustURL(t, testBase+"/n/cr382b/crdic"), "cr382b", "crdic")
		if err != nil {
			t.Fatalf("ParseChapter: %v", err)
		}
		if want := "第一段\ncz books 不是站名\n第二段"; c.Text != want {
			t.Errorf("Text = %q; want %q", c.Text, want)
		}
	})

	t.Run("listing item without cover wrapper", func(t *testing.T) {
		body := head + `<ul class="nav menu"><li><a href="/c/xuanhuan">玄幻</a></li></ul><div class="novel-item">` +
			`<a href="/a/someone">作者頁</a><a href="//czbooks.net/n/cr382b" title="《劍來》">封面</a>` +
			`<div class="novel-item-author">作者： 烽火戲諸侯 </div><div class="novel-item-newest-chapter"></div></div></body></html>`
		books, err := s.ParseListing([]byte(body), sitetest.MustURL(t, testBase+"/c/xuanhuan"))
		if err != nil {
			t.Fatalf("ParseListing: %v", err)
		}
		want := []site.ListingBook{{BookID: "cr382b", Name: "劍來", Author: "烽火戲諸侯", BookURL: testBase + "/n/cr382b"}}
		if diff := cmp.Diff(want, books); diff != "" {
			t.Errorf("books mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("listing cover linking elsewhere than a book", func(t *testing.T) {
		body := head + `<div class="novel-item"><div class="novel-item-cover-wrapper"><a href="/c/xuanhuan">玄幻</a></div>` +
			`<a href="/n/0417/">《萬古神帝》</a><div class="novel-item-title">萬古神帝</div></div></body></html>`
		books, err := s.ParseListing([]byte(body), sitetest.MustURL(t, testBase+"/c/xuanhuan"))
		if err != nil {
			t.Fatalf("ParseListing: %v", err)
		}
		want := []site.ListingBook{{BookID: "0417", Name: "萬古神帝", BookURL: testBase + "/n/0417"}}
		if diff := cmp.Diff(want, books); diff != "" {
			t.Errorf("books mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("listing past the end with only category links", func(t *testing.T) {
		body := head + `<div class="links"><a href="//czbooks.net/c/xuanhuan/10">上一頁</a><a href="//czbooks.net/c/xuanhuan">玄幻</a></div></body></html>`
		books, err := s.ParseListing([]byte(body), sitetest.MustURL(t, testBase+"/c/xuanhuan/11"))
		if err != nil || books == nil || len(books) != 0 {
			t.Errorf("ParseListing = %v, %v; want an empty list", books, err)
		}
	})

	t.Run("home category linked first without text", func(t *testing.T) {
		body := head + `<ul class="nav menu"><li><a href="/c/xuanhuan"><img alt=""></a></li><li><a href="/c/xuanhuan">玄幻</a></li>` +
			`<li><a href="/c/xuanhuan">玄幻小說</a></li></ul></body></html>`
		cats, err := s.ParseHome([]byte(body), nil)
		if err != nil {
			t.Fatalf("ParseHome: %v", err)
		}
		want := []site.Category{{ID: "xuanhuan", Name: "玄幻", URL: testBase + "/c/xuanhuan"}}
		if diff := cmp.Diff(want, cats); diff != "" {
			t.Errorf("categories mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("home menu without category links falls back to every a", func(t *testing.T) {
		body := head + `<ul class="nav menu"><li><a href="/">首頁</a></li></ul><a href="/c/dushi">都市</a></body></html>`
		cats, err := s.ParseHome([]byte(body), nil)
		if err != nil || len(cats) != 1 || cats[0].ID != "dushi" {
			t.Errorf("ParseHome = %+v, %v; want dushi", cats, err)
		}
	})
}
