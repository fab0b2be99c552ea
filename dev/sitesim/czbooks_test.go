package sitesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/text/encoding/traditionalchinese"
)

// These tests read czbooks.net pages the way SOURCE_SITE_CZBOOKS.md tells an
// adapter to, with their own small helpers: they must not share code with the
// fetcher's adapter.

// czConfig is smallConfig for czbooks.net: 3 categories of 5 books, 3 a page.
func czConfig() Config {
	cfg := smallConfig()
	cfg.Site = SiteCzbooks
	return cfg
}

// Link forms, as czSitePath reports them.
const (
	formProtocolRelative = "protocol-relative"
	formRootRelative     = "root-relative"
	formAbsolute         = "absolute"
)

// czSitePath maps a link of a czbooks.net page onto a site path, as a client
// with any base URL must: a link naming czbooks.net keeps its path (and
// query), a root-relative link is a path already. Any other link fails the
// test. It also returns the link's form.
func czSitePath(t *testing.T, href string) (path, form string) {
	t.Helper()
	u, err := url.Parse(href)
	if err != nil {
		t.Fatalf("bad href %q: %v", href, err)
	}
	switch {
	case strings.HasPrefix(href, "//") && u.Host == czbooksHost:
		form = formProtocolRelative
	case (u.Scheme == "https" || u.Scheme == "http") && u.Host == czbooksHost:
		form = formAbsolute
	case strings.HasPrefix(href, "/") && !strings.HasPrefix(href, "//"):
		form = formRootRelative
	default:
		t.Fatalf("href %q is not a czbooks.net link", href)
	}
	path = u.Path
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return path, form
}

// normLabel removes every space from a label of the .state table.
func normLabel(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// czContentLines extracts the text of div.content by the cleanup rules of
// the description: skip script, style, noscript, iframe, ins and class ad or
// ads; break at <br>, <p> and <div>; trim (U+3000 and NBSP included); drop
// empty lines and lines naming czbooks.
func czContentLines(content *goquery.Selection) []string {
	var lines []string
	var cur strings.Builder
	flush := func() {
		line := strings.TrimFunc(cur.String(), unicode.IsSpace)
		cur.Reset()
		if line != "" && !strings.Contains(strings.ToLower(line), "czbooks") {
			lines = append(lines, line)
		}
	}
	var walk func(sel *goquery.Selection)
	walk = func(sel *goquery.Selection) {
		sel.Contents().Each(func(_ int, c *goquery.Selection) {
			switch name := goquery.NodeName(c); {
			case name == "#text":
				cur.WriteString(c.Text())
			case strings.HasPrefix(name, "#"): // comments
			case name == "br":
				flush()
			case slices.Contains([]string{"script", "style", "noscript", "iframe", "ins"}, name) || c.HasClass("ad") || c.HasClass("ads"):
			case name == "p" || name == "div":
				flush()
				walk(c)
				flush()
			default:
				walk(c)
			}
		})
	}
	walk(content)
	flush()
	return lines
}

// czBook is what a book page shows, read as the description says.
type czBook struct {
	title, author, status, updated, bookmarks, views string
	genre, categoryHref, description                 string
	chapters                                         []ChapterInfo
	volumes                                          []Volume
	// linkedVolumes counts li.volume headers that wrap a link; bareItems
	// counts chapter-list items without a link.
	linkedVolumes, bareItems int
	forms                    map[string]int
}

func readCzBook(t *testing.T, doc *goquery.Document, bookID string) czBook {
	t.Helper()
	detail := doc.Find("div.novel-detail")
	if detail.Length() != 1 {
		t.Fatalf("book %s: %d div.novel-detail, want 1", bookID, detail.Length())
	}
	b := czBook{
		title:       strings.TrimSpace(detail.Find(".info .title").Text()),
		author:      strings.TrimSpace(detail.Find(".info .author a").Text()),
		genre:       strings.TrimSpace(detail.Find("a#novel-category").Text()),
		description: strings.TrimSpace(detail.Find(".description").Text()),
		forms:       map[string]int{},
	}
	b.categoryHref, _ = detail.Find("a#novel-category").Attr("href")
	detail.Find(".state table tr").Each(func(_ int, tr *goquery.Selection) {
		cells := tr.Find("td")
		for i := 0; i+1 < cells.Length(); i += 2 {
			label := normLabel(cells.Eq(i).Text())
			value := strings.TrimSpace(cells.Eq(i + 1).Text())
			switch {
			case strings.Contains(label, "狀態"):
				b.status = value
			case strings.Contains(label, "更新"):
				b.updated = value
			case strings.Contains(label, "收藏數"):
				b.bookmarks = value
			case strings.Contains(label, "觀看數"):
				b.views = value
			}
		}
	})
	chapterRe := regexp.MustCompile(`^/n/` + regexp.QuoteMeta(bookID) + `/([A-Za-z0-9]+)$`)
	lists := detail.Find("ul.chapter-list")
	if lists.Length() != 1 {
		t.Fatalf("book %s: %d ul.chapter-list, want 1", bookID, lists.Length())
	}
	lists.ChildrenFiltered("li").Each(func(_ int, li *goquery.Selection) {
		if li.HasClass("volume") {
			if li.Find("a[href]").Length() > 0 {
				b.linkedVolumes++
			}
			b.volumes = append(b.volumes, Volume{Title: strings.TrimSpace(li.Text()), FirstChapter: len(b.chapters) + 1})
			return
		}
		a := li.Find("a[href]").First()
		if a.Length() == 0 {
			b.bareItems++
			return
		}
		path, form := czSitePath(t, a.AttrOr("href", ""))
		b.forms[form]++
		m := chapterRe.FindStringSubmatch(path)
		if m == nil {
			t.Fatalf("book %s: chapter link %q is not a chapter of the book", bookID, path)
		}
		b.chapters = append(b.chapters, ChapterInfo{ID: m[1], Title: strings.TrimSpace(a.Text())})
	})
	return b
}

func TestCzbooksCatalogue(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Site = SiteCzbooks
	s := New(cfg)
	books := s.Books()
	if len(books) != cfg.Categories*cfg.BooksPerCategory {
		t.Fatalf("%d books, want %d", len(books), cfg.Categories*cfg.BooksPerCategory)
	}
	alnum := regexp.MustCompile(`^[A-Za-z0-9]+$`)
	bookRe := regexp.MustCompile(`^([a-z]{1,2}[0-9]{3}[a-z]{1,2}|0[0-9]{6})$`)
	chapterRe := regexp.MustCompile(`^([a-z][a-z0-9]{3,5}|0[0-9]{4,6})$`)
	volumeRe := regexp.MustCompile(`^第[一二三四五六七八九十百]+卷 \S+$`)
	statuses := map[string]int{}
	perCategory := map[string]int{}
	seenBooks := map[string]bool{}
	var digitBooks, digitChapters, chapters, withVolumes, withoutVolumes int
	for _, b := range books {
		if !bookRe.MatchString(b.ID) || !alnum.MatchString(b.ID) || seenBooks[b.ID] {
			t.Errorf("book id %q: not of the expected forms or not unique", b.ID)
		}
		seenBooks[b.ID] = true
		if b.ID[0] == '0' {
			digitBooks++
		}
		if b.Site != SiteCzbooks || b.TOCPages != 1 || b.CategoryID != czbooksCategories[b.Category].Slug || b.Genre != czbooksCategories[b.Category].Name {
			t.Errorf("book %s: site %q, toc pages %d, category %d %q %q", b.ID, b.Site, b.TOCPages, b.Category, b.CategoryID, b.Genre)
		}
		perCategory[b.CategoryID]++
		statuses[b.Status]++
		if b.Finished != (b.Status != "連載中") {
			t.Errorf("book %s: status %q, finished %v", b.ID, b.Status, b.Finished)
		}
		if b.Bookmarks <= 0 || b.Views < b.Bookmarks {
			t.Errorf("book %s: %d bookmarks, %d views", b.ID, b.Bookmarks, b.Views)
		}
		seen := map[string]bool{}
		for _, c := range b.Chapters {
			if !chapterRe.MatchString(c.ID) || seen[c.ID] {
				t.Errorf("book %s: chapter id %q not of the expected forms or not unique in the book", b.ID, c.ID)
			}
			seen[c.ID] = true
			if c.ID[0] == '0' {
				digitChapters++
			}
			chapters++
		}
		if len(b.Volumes) == 0 {
			withoutVolumes++
			continue
		}
		withVolumes++
		for i, v := range b.Volumes {
			if !volumeRe.MatchString(v.Title) {
				t.Errorf("book %s: volume title %q", b.ID, v.Title)
			}
			prev := 0
			if i > 0 {
				prev = b.Volumes[i-1].FirstChapter
			}
			if v.FirstChapter <= prev || v.FirstChapter > b.ChapterCount || i == 0 && v.FirstChapter != 1 {
				t.Errorf("book %s: volume %d starts at chapter %d (previous %d, %d chapters)", b.ID, i+1, v.FirstChapter, prev, b.ChapterCount)
			}
		}
	}
	for _, c := range s.Categories() {
		if perCategory[c.Slug] != cfg.BooksPerCategory {
			t.Errorf("category %s has %d books, want %d", c.Slug, perCategory[c.Slug], cfg.BooksPerCategory)
		}
	}
	if share := float64(digitBooks) / float64(len(books)); share < 0.05 || share > 0.16 {
		t.Errorf("%.2f of book ids are all digits, want about 0.1", share)
	}
	if share := float64(digitChapters) / float64(chapters); share < 0.08 || share > 0.17 {
		t.Errorf("%.2f of chapter ids are all digits, want about 0.125", share)
	}
	for _, st := range []string{"連載中", "已完成", "完結", "已完結"} {
		if statuses[st] == 0 {
			t.Errorf("no book with status %s; statuses %v", st, statuses)
		}
	}
	if withVolumes == 0 || withoutVolumes == 0 {
		t.Errorf("%d books with volumes and %d without: want both", withVolumes, withoutVolumes)
	}
}

func TestCzbooksCategories(t *testing.T) {
	t.Parallel()
	if len(czbooksCategories)-1 != maxCategories {
		t.Fatalf("czbooks.net has %d categories, m.xsw.tw %d: Config.Categories must mean the same", len(czbooksCategories)-1, maxCategories)
	}
	cfg := czConfig()
	cfg.Categories = 7
	srv := startServer(t, cfg)
	var got []Category
	if err := json.Unmarshal(get(t, newClient(t), srv.URL()+"/_sim/categories", 200).body, &got); err != nil {
		t.Fatal(err)
	}
	want := []Category{
		{1, "xuanhuan", "玄幻"}, {2, "yanqing", "言情"}, {3, "dushi", "都市"}, {4, "xianxia", "仙俠"},
		{5, "lishi", "歷史"}, {6, "kehuan", "科幻"}, {7, "kongbu", "恐怖"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/_sim/categories (-want +got):\n%s", diff)
	}
	slug := regexp.MustCompile(`^\w+$`)
	for _, c := range got {
		if !slug.MatchString(c.Slug) {
			t.Errorf("slug %q is not word characters", c.Slug)
		}
	}
}

func TestCzbooksHome(t *testing.T) {
	t.Parallel()
	cfg := czConfig()
	cfg.Categories = 7
	s := New(cfg)
	rec := serve(t, s, http.MethodGet, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	doc := fetched{body: rec.Body.Bytes()}.doc(t)
	re := regexp.MustCompile(`^/c/(\w+)$`)
	links := map[string]int{}
	names := map[string]string{}
	forms := map[string]int{}
	doc.Find("ul.nav.menu li a").Each(func(_ int, a *goquery.Selection) {
		path, form := czSitePath(t, a.AttrOr("href", ""))
		m := re.FindStringSubmatch(path)
		if m == nil {
			return
		}
		forms[form]++
		links[m[1]]++
		name := strings.TrimSpace(a.Text())
		if old, ok := names[m[1]]; ok && old != name {
			t.Errorf("category %s named %q and %q", m[1], old, name)
		}
		names[m[1]] = name
	})
	want := map[string]string{}
	for _, c := range s.Categories() {
		want[c.Slug] = c.Name
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("categories after dedupe (-want +got):\n%s", diff)
	}
	for slug, n := range links {
		if n < 2 {
			t.Errorf("category %s linked %d times: links must repeat", slug, n)
		}
	}
	for _, f := range []string{formProtocolRelative, formRootRelative, formAbsolute} {
		if forms[f] == 0 {
			t.Errorf("no %s category link; forms %v", f, forms)
		}
	}
}

func TestCzbooksListing(t *testing.T) {
	t.Parallel()
	cfg := czConfig() // 5 books a category, 3 a page
	cfg.MinChapters, cfg.MaxChapters = 0, 40
	cfg.BigBooks = map[string]int{BookIDs(cfg)[0]: 0}
	s := New(cfg)
	byID := map[string]BookInfo{}
	for _, b := range s.Books() {
		byID[b.ID] = b
	}
	bookRe := regexp.MustCompile(`^/n/([A-Za-z0-9]+)$`)
	seen := map[string]int{}
	var withStatus, withoutStatus int
	for _, c := range s.Categories() {
		tests := []struct {
			path  string
			page  int
			books int // -1: 404
		}{
			{"/c/" + c.Slug, 1, 3},
			{"/c/" + c.Slug + "/2", 2, 2},
			{"/c/" + c.Slug + "/3", 3, -1},
			{"/c/" + c.Slug + "/1", 1, -1},
			{"/c/" + c.Slug + "/02", 2, -1},
			{"/c/" + c.Slug + "/9223372036854775807", 0, -1},
		}
		for _, tt := range tests {
			t.Run(tt.path, func(t *testing.T) {
				rec := serve(t, s, http.MethodGet, tt.path)
				if tt.books < 0 {
					if rec.Code != http.StatusNotFound {
						t.Errorf("status %d, want 404", rec.Code)
					}
					return
				}
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d, want 200", rec.Code)
				}
				doc := fetched{body: rec.Body.Bytes()}.doc(t)
				items := doc.Find("li.novel-item-wrapper > div.novel-item")
				if items.Length() != tt.books {
					t.Fatalf("%d books, want %d", items.Length(), tt.books)
				}
				if doc.Find(".description, .novel-item-description").Length() != 0 {
					t.Error("listing has descriptions")
				}
				items.Each(func(_ int, item *goquery.Selection) {
					cover := item.Find(".novel-item-cover-wrapper a[href]")
					path, _ := czSitePath(t, cover.AttrOr("href", ""))
					m := bookRe.FindStringSubmatch(path)
					if m == nil {
						t.Fatalf("cover links %q, not a book", path)
					}
					b, ok := byID[m[1]]
					if !ok {
						t.Fatalf("listing links unknown book %q", m[1])
					}
					seen[b.ID]++
					if b.CategoryID != c.Slug || b.ListingPage != tt.page {
						t.Errorf("book %s of category %s, page %d, listed in %s page %d", b.ID, b.CategoryID, b.ListingPage, c.Slug, tt.page)
					}
					got := []string{
						strings.TrimSpace(cover.Find(".novel-item-title").Text()),
						strings.TrimSpace(item.Find(".novel-item-author a").Text()),
					}
					want := []string{b.Name, b.Author}
					newest := item.Find(".novel-item-newest-chapter a")
					if b.ChapterCount == 0 {
						if newest.Length() != 0 {
							t.Errorf("book %s without chapters has a newest chapter link", b.ID)
						}
					} else {
						last := b.Chapters[b.ChapterCount-1]
						p, _ := czSitePath(t, newest.AttrOr("href", ""))
						got = append(got, strings.TrimSpace(newest.Text()), p)
						want = append(want, last.Title, "/n/"+b.ID+"/"+last.ID)
					}
					if st := item.Find(".novel-item-status ul.nav li"); st.Length() > 0 {
						withStatus++
						counts := map[string]string{}
						st.Each(func(_ int, li *goquery.Selection) {
							for _, icon := range []string{"fa-bookmark", "fa-eye"} {
								if li.Find("i."+icon).Length() > 0 {
									counts[icon] = strings.TrimSpace(li.Text())
								}
							}
						})
						got = append(got, counts["fa-bookmark"], counts["fa-eye"])
						want = append(want, formatCount(b.Bookmarks), formatCount(b.Views))
					} else {
						withoutStatus++
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("book %s (-want +got):\n%s", b.ID, diff)
					}
				})
			})
		}
	}
	if len(seen) != len(byID) {
		t.Errorf("listings show %d books, the site has %d", len(seen), len(byID))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("book %s listed %d times", id, n)
		}
	}
	if withStatus == 0 || withoutStatus == 0 {
		t.Errorf("%d items with a status block, %d without: want both", withStatus, withoutStatus)
	}
}

func TestFormatCount(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0", 12: "12", 999: "999", 1000: "1,000", 5678: "5,678", 123456: "123,456", 1234567: "1,234,567"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCzbooksBookPage(t *testing.T) {
	t.Parallel()
	cfg := czConfig()
	cfg.MinChapters, cfg.MaxChapters = 0, 70
	ids := BookIDs(cfg)
	cfg.BigBooks = map[string]int{ids[1]: 1000, ids[2]: 0}
	s := New(cfg)
	forms := map[string]int{}
	var linkedVolumes, bareItems, volumes int
	for _, b := range s.Books() {
		t.Run(b.ID, func(t *testing.T) {
			rec := serve(t, s, http.MethodGet, "/n/"+b.ID)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			got := readCzBook(t, fetched{body: rec.Body.Bytes()}.doc(t), b.ID)
			for k, v := range got.forms {
				forms[k] += v
			}
			linkedVolumes += got.linkedVolumes
			bareItems += got.bareItems
			volumes += len(got.volumes)

			checks := []struct{ name, got, want string }{
				{"title", got.title, "《" + b.Name + "》"},
				{"author", got.author, b.Author},
				{"status", got.status, b.Status},
				{"updated", got.updated, b.UpdatedText},
				{"bookmarks", got.bookmarks, formatCount(b.Bookmarks)},
				{"views", got.views, formatCount(b.Views)},
				{"category name", got.genre, b.Genre},
				{"category href", got.categoryHref, "/c/" + b.CategoryID},
				{"description", got.description, b.Intro},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(got.updated) {
				t.Errorf("更新時間 %q is not YYYY-MM-DD", got.updated)
			}
			if diff := cmp.Diff(b.Chapters, got.chapters, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("chapter list (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(b.Volumes, got.volumes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("volumes (-want +got):\n%s", diff)
			}
		})
	}
	if b, _ := s.Book(ids[1]); b.ChapterCount != 1000 || b.TOCPages != 1 || len(b.Volumes) < 2 && len(b.Volumes) != 0 {
		t.Errorf("big book: %d chapters, %d toc pages, %d volumes", b.ChapterCount, b.TOCPages, len(b.Volumes))
	}
	for _, f := range []string{formProtocolRelative, formRootRelative, formAbsolute} {
		if forms[f] == 0 {
			t.Errorf("no %s chapter link; forms %v", f, forms)
		}
	}
	if volumes == 0 || linkedVolumes == 0 || linkedVolumes == volumes {
		t.Errorf("%d volume headers, %d with a link: want some with and some without", volumes, linkedVolumes)
	}
	if bareItems == 0 {
		t.Error("no chapter-list item without a link")
	}
}

func TestCzbooksChapterPage(t *testing.T) {
	t.Parallel()
	s := New(czConfig())
	b := s.Books()[0]
	separators := map[string]bool{}
	for i, c := range b.Chapters[:8] {
		rec := serve(t, s, http.MethodGet, "/n/"+b.ID+"/"+c.ID)
		if rec.Code != http.StatusOK {
			t.Fatalf("chapter %d: status %d", i+1, rec.Code)
		}
		doc := fetched{body: rec.Body.Bytes()}.doc(t)
		detail := doc.Find(".chapter-detail")
		if got := strings.TrimSpace(detail.Find("div.name").Text()); got != c.Title {
			t.Errorf("chapter %d: div.name = %q, want %q", i+1, got, c.Title)
		}
		if title := doc.Find("title").Text(); !strings.HasPrefix(title, c.Title+" - ") {
			t.Errorf("chapter %d: <title> %q does not start with the chapter title", i+1, title)
		}
		content := detail.Find("div.content")
		if content.Length() != 1 {
			t.Fatalf("chapter %d: %d div.content", i+1, content.Length())
		}
		truth, _ := s.Chapter(b.ID, c.ID)
		if diff := cmp.Diff(truth.Paragraphs, czContentLines(content)); diff != "" {
			t.Errorf("chapter %d: text after cleanup (-want +got):\n%s", i+1, diff)
		}
		raw, _ := content.Html()
		for name, present := range map[string]bool{
			"div.ad":             content.Find("div.ad").Length() > 0,
			"ins":                content.Find("ins").Length() > 0,
			"script":             content.Find("script").Length() > 0,
			"a line naming it":   strings.Contains(content.Text(), "czbooks"),
			"NBSP or U+3000":     strings.ContainsAny(content.Text(), "\u00a0\u3000"),
			"no link in content": content.Find("a").Length() == 0,
		} {
			if !present {
				t.Errorf("chapter %d: div.content lacks %s:\n%s", i+1, name, raw)
			}
		}
		if content.Find("p").Length() > 0 {
			separators["p"] = true
		}
		if content.Find("br").Length() > 0 {
			separators["br"] = true
		}
		prev, next := "/n/"+b.ID, "/n/"+b.ID
		if i > 0 {
			prev = "/n/" + b.ID + "/" + b.Chapters[i-1].ID
		}
		if i+1 < len(b.Chapters) {
			next = "/n/" + b.ID + "/" + b.Chapters[i+1].ID
		}
		for _, l := range []struct{ class, want string }{{"prev-chapter", prev}, {"next-chapter", next}} {
			links := detail.Find("a." + l.class)
			if links.Length() == 0 {
				t.Errorf("chapter %d: no a.%s", i+1, l.class)
			}
			links.Each(func(_ int, a *goquery.Selection) {
				if got, _ := czSitePath(t, a.AttrOr("href", "")); got != l.want {
					t.Errorf("chapter %d: a.%s = %q, want %q", i+1, l.class, got, l.want)
				}
			})
		}
	}
	if !separators["p"] || !separators["br"] {
		t.Errorf("paragraph separators seen %v, want both <br> and <p>", separators)
	}
	last := b.Chapters[len(b.Chapters)-1]
	doc := fetched{body: serve(t, s, http.MethodGet, "/n/"+b.ID+"/"+last.ID).Body.Bytes()}.doc(t)
	if got, _ := czSitePath(t, doc.Find("a.next-chapter").AttrOr("href", "")); got != "/n/"+b.ID {
		t.Errorf("last chapter: next = %q, want the book page", got)
	}
}

func TestCzbooksNotFound(t *testing.T) {
	t.Parallel()
	s := New(czConfig()) // categories xuanhuan, yanqing, dushi
	b := s.Books()[0]
	other := s.Books()[1]
	tests := []struct {
		path   string
		method string
		want   int
	}{
		{path: "/n/zz999zz", want: 404},
		{path: "/n/" + b.ID + "/", want: 404},
		{path: "/n/" + strings.ToUpper(b.ID), want: 404},
		{path: "/n/" + b.ID + "/nochapter", want: 404},
		{path: "/n/" + b.ID + "/" + other.Chapters[0].ID + "x", want: 404},
		{path: "/n/" + b.ID + "/" + b.Chapters[0].ID + "/", want: 404},
		{path: "/n/" + b.ID + "/" + b.Chapters[0].ID + "/x", want: 404},
		{path: "/n/a-b", want: 404},
		{path: "/n/", want: 404},
		{path: "/n", want: 404},
		{path: "/c/xianxia", want: 404}, // only 3 categories
		{path: "/c/nope", want: 404},
		{path: "/c/", want: 404},
		{path: "/c/xuanhuan/", want: 404},
		{path: "/c/xuanhuan/0", want: 404},
		{path: "/c/xuanhuan/-2", want: 404},
		{path: "/c/xuanhuan/99999999999999999999", want: 404},
		{path: "/" + b.ID + "/", want: 404},
		{path: "/fenlei1_1.html", want: 404},
		{path: "/index.html", want: 404},
		{path: "//", want: 404},
		{path: "/_sim", want: 404},
		{path: "/n/" + b.ID + "/" + b.Chapters[0].ID, want: 200},
		{path: "/", method: http.MethodPost, want: 405},
		{path: "/n/" + b.ID, method: http.MethodHead, want: 200},
	}
	for _, tt := range tests {
		method := cmpOr(tt.method, http.MethodGet)
		t.Run(method+" "+tt.path, func(t *testing.T) {
			rec := serve(t, s, method, tt.path)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func TestCzbooksEncoding(t *testing.T) {
	t.Parallel()
	cfg := czConfig()
	plain := New(cfg)
	cfg.Big5 = true
	big5 := New(cfg)
	b := plain.Books()[2]
	for _, p := range []string{"/", "/c/xuanhuan", "/n/" + b.ID, "/n/" + b.ID + "/" + b.Chapters[1].ID, "/n/missing"} {
		t.Run(p, func(t *testing.T) {
			u := serve(t, plain, http.MethodGet, p)
			g := serve(t, big5, http.MethodGet, p)
			if ct := u.Header().Get("Content-Type"); ct != DefaultCzbooksContentType {
				t.Errorf("Content-Type %q, want %q", ct, DefaultCzbooksContentType)
			}
			if ct := g.Header().Get("Content-Type"); ct != DefaultContentType {
				t.Errorf("Big5 mode: Content-Type %q, want %q", ct, DefaultContentType)
			}
			if !bytes.Contains(u.Body.Bytes(), []byte(`<meta charset="utf-8">`)) || !utf8.Valid(u.Body.Bytes()) {
				t.Error("page is not UTF-8 or does not declare it")
			}
			raw := g.Body.Bytes()
			if !bytes.Contains(raw, []byte(`<meta charset="big5">`)) {
				t.Error("Big5 mode: page does not declare Big5")
			}
			if utf8.Valid(raw) && !isASCII(u.Body.Bytes()) {
				t.Error("Big5 mode: body is UTF-8")
			}
			decoded, err := traditionalchinese.Big5.NewDecoder().Bytes(raw)
			if err != nil {
				t.Fatalf("decode Big5: %v", err)
			}
			decoded = bytes.Replace(decoded, []byte(`charset="big5"`), []byte(`charset="utf-8"`), 1)
			if !bytes.Equal(decoded, u.Body.Bytes()) {
				t.Error("Big5 page does not decode to the UTF-8 page")
			}
		})
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// TestCzbooksLinksNameTheSite checks that no page names the simulator's own
// address: every link names czbooks.net or is root-relative.
func TestCzbooksLinksNameTheSite(t *testing.T) {
	t.Parallel()
	srv := startServer(t, czConfig())
	c := newClient(t)
	b := srv.Site().Books()[1]
	host := strings.TrimPrefix(srv.URL(), "http://")
	for _, p := range []string{"/", "/c/yanqing", "/c/yanqing/2", "/n/" + b.ID, "/n/" + b.ID + "/" + b.Chapters[3].ID} {
		f := get(t, c, srv.URL()+p, 200)
		if bytes.Contains(f.body, []byte(host)) || bytes.Contains(f.body, []byte("127.0.0.1")) {
			t.Errorf("GET %s: page names the simulator's address", p)
		}
		f.doc(t).Find("a[href]").Each(func(_ int, a *goquery.Selection) {
			href := a.AttrOr("href", "")
			if u, err := url.Parse(href); err != nil || u.Host != "" && u.Host != czbooksHost && !strings.HasSuffix(u.Host, ".com") {
				t.Errorf("GET %s: link %q", p, href)
			}
		})
	}
}

func TestCzbooksGrowth(t *testing.T) {
	t.Parallel()
	cfg := czConfig()
	cfg.MinChapters, cfg.MaxChapters = 40, 40
	cfg.Validators = true
	srv := startServer(t, cfg)
	s := srv.Site()
	c := newClient(t)
	var before BookInfo
	for _, b := range s.Books() {
		if len(b.Volumes) > 0 {
			before = b
			break
		}
	}
	if before.ID == "" {
		t.Fatal("no book with volumes")
	}
	bookURL := srv.URL() + "/n/" + before.ID
	first := get(t, c, bookURL, 200)
	etag := first.header.Get("ETag")

	f, err := fetch(t, c, http.MethodPost, srv.URL()+"/_sim/books/"+before.ID+"/grow?n=3", nil)
	if err != nil || f.status != http.StatusOK {
		t.Fatalf("grow: status %d, err %v: %s", f.status, err, f.body)
	}
	var grown BookInfo
	if err := json.Unmarshal(f.body, &grown); err != nil {
		t.Fatalf("decode grow answer: %v", err)
	}
	if grown.ChapterCount != 43 || grown.TOCPages != 1 || !grown.Updated.After(before.Updated) {
		t.Errorf("after growth: %d chapters, %d pages, updated %v (was %v)", grown.ChapterCount, grown.TOCPages, grown.Updated, before.Updated)
	}
	if diff := cmp.Diff(before.Volumes, grown.Volumes); diff != "" {
		t.Errorf("growth changed the volumes (-before +after):\n%s", diff)
	}
	after, _ := s.Book(before.ID)
	if diff := cmp.Diff(before.Chapters, after.Chapters[:40]); diff != "" {
		t.Errorf("growth changed old chapters (-before +after):\n%s", diff)
	}

	page := get(t, c, bookURL, 200)
	if page.header.Get("ETag") == etag || bytes.Equal(page.body, first.body) {
		t.Error("book page or its ETag did not change with growth")
	}
	got := readCzBook(t, page.doc(t), before.ID)
	if diff := cmp.Diff(after.Chapters, got.chapters); diff != "" {
		t.Errorf("chapter list after growth (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(after.Volumes, got.volumes); diff != "" {
		t.Errorf("volumes after growth (-want +got):\n%s", diff)
	}
	newest := after.Chapters[len(after.Chapters)-1]
	get(t, c, bookURL+"/"+newest.ID, 200)

	listing := get(t, c, srv.URL()+fmt.Sprintf("/c/%s%s", after.CategoryID, pageSuffix(after.ListingPage)), 200).doc(t)
	var found bool
	listing.Find(".novel-item-newest-chapter a").Each(func(_ int, a *goquery.Selection) {
		p, _ := czSitePath(t, a.AttrOr("href", ""))
		found = found || p == "/n/"+after.ID+"/"+newest.ID
	})
	if !found {
		t.Error("listing does not show the new newest chapter")
	}
}

func pageSuffix(n int) string {
	if n == 1 {
		return ""
	}
	return fmt.Sprintf("/%d", n)
}

func TestCzbooksValidators(t *testing.T) {
	t.Parallel()
	cfg := czConfig()
	cfg.Validators = true
	srv := startServer(t, cfg)
	b := srv.Site().Books()[0]
	c := newClient(t)
	bookURL := srv.URL() + "/n/" + b.ID

	first := get(t, c, bookURL, 200)
	etag, lastMod := first.header.Get("ETag"), first.header.Get("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Fatalf("no validators: ETag %q, Last-Modified %q", etag, lastMod)
	}
	tests := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"matching etag", http.Header{"If-None-Match": {etag}}, 304},
		{"other etag", http.Header{"If-None-Match": {`"other"`}}, 200},
		{"same date", http.Header{"If-Modified-Since": {lastMod}}, 304},
	}
	for _, tt := range tests {
		f, err := fetch(t, c, http.MethodGet, bookURL, tt.header)
		if err != nil || f.status != tt.want {
			t.Errorf("%s: status %d, err %v; want %d", tt.name, f.status, err, tt.want)
		}
	}
	for _, p := range []string{"/", "/c/xuanhuan", "/n/" + b.ID + "/" + b.Chapters[0].ID} {
		if f := get(t, c, srv.URL()+p, 200); f.header.Get("ETag") != "" {
			t.Errorf("GET %s: ETag on a page other than a book page", p)
		}
	}
	if err := srv.Site().AddChapters(b.ID, 1); err != nil {
		t.Fatal(err)
	}
	f, err := fetch(t, c, http.MethodGet, bookURL, http.Header{"If-None-Match": {etag}})
	if err != nil || f.status != 200 || f.header.Get("ETag") == etag {
		t.Errorf("after growth: status %d, ETag %q, err %v; want 200 and a new ETag", f.status, f.header.Get("ETag"), err)
	}
}

func TestCzbooksStats(t *testing.T) {
	t.Parallel()
	s := New(czConfig())
	b := s.Books()[0]
	for _, p := range []string{"/", "/c/xuanhuan", "/c/xuanhuan/2", "/n/" + b.ID, "/n/" + b.ID + "/" + b.Chapters[0].ID, "/n/" + b.ID + "/" + b.Chapters[1].ID, "/x"} {
		serve(t, s, http.MethodGet, p)
	}
	st := s.Stats(time.Second)
	want := map[string]int{"home": 1, "listing": 2, "book": 1, "chapter": 2, "other": 1}
	if diff := cmp.Diff(want, st.ByPage); diff != "" {
		t.Errorf("ByPage (-want +got):\n%s", diff)
	}
	if st.Count != 7 || st.ByStatus[200] != 6 || st.ByStatus[404] != 1 {
		t.Errorf("count %d, by status %v", st.Count, st.ByStatus)
	}
}

func FuzzCzbooksHandler(f *testing.F) {
	s := New(czConfig())
	b := s.Books()[0]
	fuzzHandler(f, s, "/", "/c/xuanhuan", "/c/xuanhuan/2", "/n/"+b.ID, "/n/"+b.ID+"/"+b.Chapters[0].ID, "/c//2", "/n//x")
}
