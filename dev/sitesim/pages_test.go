package sitesim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// serve answers one request with the site's handler, without a server.
func serve(t *testing.T, s *Site, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, path, nil))
	return rec
}

// TestDeterminism: for either site, two sites of one seed hold the same books and
// render the same pages, BookIDs says which ids a configuration gets, and another seed
// gives other ids.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		cfg   Config
		paths func(book BookInfo) []string
	}{
		{SiteXSW, smallConfig(), func(book BookInfo) []string {
			return []string{"/", "/fenlei1_1.html", "/fenlei2_2.html", "/" + book.ID + "/", "/" + book.ID + "/page-1.html",
				"/" + book.ID + "/page-2.html", "/" + book.ID + "/" + book.Chapters[7].ID + ".html"}
		}},
		{SiteCzbooks, czConfig(), func(book BookInfo) []string {
			return []string{"/", "/c/xuanhuan", "/c/yanqing/2", "/n/" + book.ID, "/n/" + book.ID + "/" + book.Chapters[7].ID}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			a, b := New(cfg), New(cfg)
			if diff := cmp.Diff(a.Books(), b.Books()); diff != "" {
				t.Fatalf("same seed, different books (-a +b):\n%s", diff)
			}
			book, _ := a.Book(a.Books()[4].ID) // with its chapters
			for _, p := range tt.paths(book) {
				ra, rb := serve(t, a, http.MethodGet, p), serve(t, b, http.MethodGet, p)
				if ra.Code != http.StatusOK {
					t.Errorf("GET %s: status %d", p, ra.Code)
				}
				if ra.Body.String() != rb.Body.String() {
					t.Errorf("GET %s: two sites with seed %d render different pages", p, cfg.Seed)
				}
			}
			if got, want := BookIDs(cfg), ids(a.Books()); !slices.Equal(got, want) {
				t.Errorf("BookIDs = %v, site has %v", got, want)
			}
			other := cfg
			other.Seed++
			if slices.Equal(BookIDs(other), BookIDs(cfg)) {
				t.Errorf("seeds %d and %d give the same book ids", cfg.Seed, other.Seed)
			}
		})
	}
	xsw, cz := czConfig(), czConfig()
	xsw.Site = SiteXSW
	if slices.Equal(BookIDs(xsw), BookIDs(cz)) {
		t.Error("xsw and czbooks give the same book ids")
	}
}

func ids(books []BookInfo) []string {
	out := make([]string, len(books))
	for i, b := range books {
		out[i] = b.ID
	}
	return out
}

func TestCatalogue(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	s := New(cfg)
	books := s.Books()
	if len(books) != cfg.Categories*cfg.BooksPerCategory {
		t.Fatalf("%d books, want %d", len(books), cfg.Categories*cfg.BooksPerCategory)
	}
	idRe := regexp.MustCompile(`^[1-9][0-9]{6}$`)
	chapterRe := regexp.MustCompile(`^[1-9][0-9]{8}$`)
	numbered := regexp.MustCompile(`^第([0-9]+)章`)
	perCategory := map[int]int{}
	seenChapters := map[string]bool{}
	var finished, chinese, fullWidth, unnumbered, repeats, skips, nonMonotonic int
	for i, b := range books {
		perCategory[b.Category]++
		if !idRe.MatchString(b.ID) {
			t.Errorf("book id %q is not 7 digits", b.ID)
		}
		if i > 0 && b.ID <= books[i-1].ID {
			t.Errorf("book ids not increasing: %s after %s", b.ID, books[i-1].ID)
		}
		if n := len(b.Chapters); n < cfg.MinChapters || n > cfg.MaxChapters || n != b.ChapterCount {
			t.Errorf("book %s: %d chapters (count %d), want %d..%d", b.ID, n, b.ChapterCount, cfg.MinChapters, cfg.MaxChapters)
		}
		if b.Finished {
			finished++
		}
		prev := -1
		for j, c := range b.Chapters {
			if !chapterRe.MatchString(c.ID) || seenChapters[c.ID] {
				t.Errorf("chapter id %q: not 9 digits or not unique", c.ID)
			}
			seenChapters[c.ID] = true
			if j > 0 && c.ID < b.Chapters[j-1].ID {
				nonMonotonic++
			}
			switch m := numbered.FindStringSubmatch(c.Title); {
			case m != nil:
				n, _ := strconv.Atoi(m[1])
				if n == prev {
					repeats++
				}
				if prev >= 0 && n > prev+1 {
					skips++
				}
				prev = n
			case strings.ContainsAny(c.Title, "０１２３４５６７８９"):
				fullWidth++
			case strings.HasPrefix(c.Title, "第") && strings.Contains(c.Title, "章"):
				chinese++
			default:
				unnumbered++
			}
		}
	}
	for c := 1; c <= cfg.Categories; c++ {
		if perCategory[c] != cfg.BooksPerCategory {
			t.Errorf("category %d has %d books, want %d", c, perCategory[c], cfg.BooksPerCategory)
		}
	}
	if ratio := float64(finished) / float64(len(books)); ratio < 0.15 || ratio > 0.45 {
		t.Errorf("finished ratio %.2f, want about %.2f", ratio, cfg.FinishedRatio)
	}
	// Titles must be irregular in every way the description lists.
	for name, n := range map[string]int{
		"chinese numerals": chinese, "full-width digits": fullWidth, "no number": unnumbered,
		"repeated numbers": repeats, "skipped numbers": skips, "ids against position": nonMonotonic,
	} {
		if n == 0 {
			t.Errorf("no chapter titles with %s", name)
		}
	}
}

func TestHome(t *testing.T) {
	t.Parallel()
	s := New(DefaultConfig())
	rec := serve(t, s, http.MethodGet, "/")
	doc := fetched{status: rec.Code, body: rec.Body.Bytes()}.doc(t)
	re := regexp.MustCompile(`fenlei(\d+)_1\.html$`)
	seen := map[string]int{}
	names := map[string]string{}
	doc.Find("a[href]").Each(func(_ int, a *goquery.Selection) {
		m := re.FindStringSubmatch(a.AttrOr("href", ""))
		if m == nil {
			return
		}
		seen[m[1]]++
		name := strings.TrimSpace(a.Text())
		if old, ok := names[m[1]]; ok && old != name {
			t.Errorf("category %s named %q and %q", m[1], old, name)
		}
		names[m[1]] = name
	})
	want := map[string]string{"1": "玄幻小說", "2": "修真小說", "3": "都市小說", "4": "曆史小說", "5": "網遊小說", "6": "科幻小說", "7": "恐怖小說"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("category names (-want +got):\n%s", diff)
	}
	for id, n := range seen {
		if n != 2 {
			t.Errorf("category %s linked %d times, want 2", id, n)
		}
	}
}

func TestListing(t *testing.T) {
	t.Parallel()
	cfg := smallConfig() // 5 books a category, 3 a page
	s := New(cfg)
	byID := map[string]BookInfo{}
	for _, b := range s.Books() {
		byID[b.ID] = b
	}
	tests := []struct {
		name  string
		path  string
		books int
	}{
		{"first page", "/fenlei2_1.html", 3},
		{"last page", "/fenlei2_2.html", 2},
		{"past the end", "/fenlei2_3.html", 0},
		{"far past the end", "/fenlei2_9223372036854775807.html", 0},
	}
	seen := map[string]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, s, http.MethodGet, tt.path)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", rec.Code)
			}
			doc := fetched{body: rec.Body.Bytes()}.doc(t)
			if got := doc.Find("div.bookbox").Length(); got != tt.books {
				t.Fatalf("%d div.bookbox, want %d", got, tt.books)
			}
			if doc.Find("div.page a").Length() == 0 {
				t.Errorf("no pagination links: a page past the end should look normal")
			}
			doc.Find("div.bookbox > div > div.bookinfo").Each(func(_ int, info *goquery.Selection) {
				a := info.Find("h4.bookname > i.iTit > a")
				id := strings.Trim(a.AttrOr("href", ""), "/")
				b, ok := byID[id]
				if !ok {
					t.Fatalf("listing links unknown book %q", a.AttrOr("href", ""))
				}
				seen[id]++
				if b.Category != 2 {
					t.Errorf("book %s of category %d listed in category 2", id, b.Category)
				}
				newest := b.Chapters[len(b.Chapters)-1]
				got := []string{
					a.Text(),
					strings.TrimPrefix(info.Find("div.author").Text(), "作者："),
					info.Find("div.update > a").Text(),
					info.Find("div.update > a").AttrOr("href", ""),
					strings.TrimPrefix(info.Find("div.intro_line").Text(), "簡介："),
				}
				want := []string{b.Name, b.Author, newest.Title, "/" + b.ID + "/" + newest.ID + ".html", b.Intro}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("book %s (-want +got):\n%s", id, diff)
				}
			})
		})
	}
	if len(seen) != cfg.BooksPerCategory {
		t.Errorf("listing shows %d books of category 2, want %d", len(seen), cfg.BooksPerCategory)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("book %s listed %d times", id, n)
		}
	}
}

func TestBookHome(t *testing.T) {
	t.Parallel()
	s := New(smallConfig())
	b := s.Books()[3]
	rec := serve(t, s, http.MethodGet, "/"+b.ID+"/")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	doc := fetched{body: rec.Body.Bytes()}.doc(t)

	if doc.Find("div.block > div.block_img2 > img").Length() != 1 {
		t.Error("no div.block > div.block_img2 > img")
	}
	txt := doc.Find("div.block_txt2")
	if got := strings.TrimSpace(txt.Find("h2 > a").Text()); got != b.Name {
		t.Errorf("h2 = %q, want %q", got, b.Name)
	}
	lines := map[string]*goquery.Selection{}
	txt.Find("p").Each(func(_ int, p *goquery.Selection) {
		label, _, _ := strings.Cut(p.Text(), "：")
		lines[label] = p
	})
	newest := b.Chapters[len(b.Chapters)-1]
	checks := []struct{ label, got, want string }{
		{"作者", lines["作者"].Find("a").Text(), b.Author},
		{"分類", lines["分類"].Find("a").Text(), b.Genre},
		{"狀態", lines["狀態"].Text(), "狀態：" + b.Status},
		{"更新", lines["更新"].Text(), "更新：" + formatUpdated(b.Updated)},
		{"最新 text", lines["最新"].Find("a").Text(), newest.Title},
		{"最新 href", lines["最新"].Find("a").AttrOr("href", ""), newest.ID + ".html"},
		{"intro", doc.Find("div.intro_info").Text(), b.Intro},
		{"more", doc.Find("div.book_more > a").AttrOr("href", ""), "page-1.html"},
		{"more text", doc.Find("div.book_more > a").Text(), "查看更多章節"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.label, c.got, c.want)
		}
	}
	if !regexp.MustCompile(`^更新：\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2}$`).MatchString(lines["更新"].Text()) {
		t.Errorf("更新 line %q is not YYYY/M/D H:mm:ss", lines["更新"].Text())
	}
	var want []string
	for i := len(b.Chapters) - 1; i >= len(b.Chapters)-10; i-- {
		want = append(want, "/"+b.ID+"/"+b.Chapters[i].ID+".html")
	}
	if diff := cmp.Diff(want, attrs(doc.Find("ul.chapter > li > a"), "href")); diff != "" {
		t.Errorf("newest chapters (-want +got):\n%s", diff)
	}
}

// readTOC walks the table of contents from page 1 as a crawler would and
// returns the chapter ids in order, the page count and the href forms seen.
func readTOC(t *testing.T, s *Site, bookID string) (chapters []string, pages int, forms map[string]int) {
	t.Helper()
	forms = map[string]int{}
	countRe := regexp.MustCompile(`第(\d+)/(\d+)頁`)
	chapterRe := regexp.MustCompile(`^/` + bookID + `/(\d+)\.html$`)
	for n := 1; ; n++ {
		path := fmt.Sprintf("/%s/page-%d.html", bookID, n)
		rec := serve(t, s, http.MethodGet, path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, rec.Code)
		}
		doc := fetched{body: rec.Body.Bytes()}.doc(t)
		blocks := doc.Find("div.page")
		if blocks.Length() != 2 {
			t.Fatalf("GET %s: %d div.page blocks, want 2", path, blocks.Length())
		}
		m := countRe.FindStringSubmatch(blocks.First().Text())
		if m == nil || m[1] != strconv.Itoa(n) {
			t.Fatalf("GET %s: page count %q", path, blocks.First().Text())
		}
		pages, _ = strconv.Atoi(m[2])
		if last := blocks.Last().Find("a").FilterFunction(func(_ int, a *goquery.Selection) bool { return a.Text() == "尾頁" }); last.AttrOr("href", "") != fmt.Sprintf("page-%d.html", pages) {
			t.Errorf("GET %s: 尾頁 links %q", path, last.AttrOr("href", ""))
		}
		base, _ := url.Parse("http://sim" + path)
		doc.Find("div.cover > ul.chapter > li > a").Each(func(_ int, a *goquery.Selection) {
			href := a.AttrOr("href", "")
			if strings.HasPrefix(href, "/") {
				forms["absolute"]++
			} else {
				forms["relative"]++
			}
			ref, err := url.Parse(href)
			if err != nil {
				t.Fatalf("bad href %q", href)
			}
			m := chapterRe.FindStringSubmatch(base.ResolveReference(ref).Path)
			if m == nil {
				t.Fatalf("GET %s: href %q is not a chapter of the book", path, href)
			}
			chapters = append(chapters, m[1])
		})
		next := doc.Find("div.page a.next")
		if n == pages {
			if next.Length() != 0 {
				t.Errorf("GET %s: last page has a next link", path)
			}
			return chapters, pages, forms
		}
		if next.Length() != 2 || next.First().Text() != "下一頁" || next.First().AttrOr("href", "") != fmt.Sprintf("page-%d.html", n+1) {
			t.Fatalf("GET %s: next links %v", path, attrs(next, "href"))
		}
	}
}

func TestTOCPagination(t *testing.T) {
	t.Parallel()
	cfg := smallConfig()
	cfg.MinChapters, cfg.MaxChapters = 0, 70
	big := BookIDs(cfg)[1]
	cfg.BigBooks = map[string]int{big: 1234, BookIDs(cfg)[2]: 0, BookIDs(cfg)[3]: 40}
	s := New(cfg)
	forms := map[string]int{}
	for _, b := range s.Books() {
		t.Run(b.ID, func(t *testing.T) {
			got, pages, f := readTOC(t, s, b.ID)
			for k, v := range f {
				forms[k] += v
			}
			want := make([]string, len(b.Chapters))
			for i, c := range b.Chapters {
				want[i] = c.ID
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("chapters across pages (-want +got):\n%s", diff)
			}
			if pages != b.TOCPages || pages != max(1, (len(b.Chapters)+19)/20) {
				t.Errorf("%d pages, ground truth %d, chapters %d", pages, b.TOCPages, len(b.Chapters))
			}

			rec := serve(t, s, http.MethodGet, fmt.Sprintf("/%s/page-%d.html", b.ID, pages+1))
			if rec.Code != http.StatusOK {
				t.Fatalf("past the last page: status %d, want 200", rec.Code)
			}
			if n := (fetched{body: rec.Body.Bytes()}).doc(t).Find("div.cover > ul.chapter > li").Length(); n != 0 {
				t.Errorf("past the last page: %d chapters, want none", n)
			}
		})
	}
	if b, _ := s.Book(big); b.ChapterCount != 1234 || b.TOCPages != 62 {
		t.Errorf("big book: %d chapters on %d pages, want 1234 on 62", b.ChapterCount, b.TOCPages)
	}
	if forms["absolute"] == 0 || forms["relative"] == 0 {
		t.Errorf("href forms %v: want both relative and absolute-path links", forms)
	}
}

func TestChapterPage(t *testing.T) {
	t.Parallel()
	s := New(smallConfig())
	b := s.Books()[0]
	separators := map[string]bool{}
	for i, c := range b.Chapters[:8] {
		rec := serve(t, s, http.MethodGet, "/"+b.ID+"/"+c.ID+".html")
		if rec.Code != http.StatusOK {
			t.Fatalf("chapter %d: status %d", i+1, rec.Code)
		}
		doc := fetched{body: rec.Body.Bytes()}.doc(t)
		if got := doc.Find("#nr_title.nr_title").Text(); got != c.Title {
			t.Errorf("chapter %d: #nr_title = %q, want %q", i+1, got, c.Title)
		}
		if title := doc.Find("title").Text(); !strings.HasPrefix(title, c.Title+"_") {
			t.Errorf("chapter %d: <title> %q does not start with the chapter title", i+1, title)
		}
		body := doc.Find("div#nr1.mm-content")
		if body.Length() != 1 {
			t.Fatalf("chapter %d: no div#nr1.mm-content", i+1)
		}
		text := strings.TrimSpace(body.Text())
		if !strings.HasSuffix(text, ">>章節報錯<<") {
			t.Errorf("chapter %d: text does not end with >>章節報錯<<: %q", i+1, text[max(0, len(text)-40):])
		}
		truth, _ := s.Chapter(b.ID, c.ID)
		if truth.Position != i+1 || len(truth.Paragraphs) < 3 {
			t.Errorf("chapter %d: ground truth position %d, %d paragraphs", i+1, truth.Position, len(truth.Paragraphs))
		}
		for _, p := range truth.Paragraphs {
			if !strings.Contains(text, p) {
				t.Errorf("chapter %d: paragraph %q missing", i+1, p)
			}
		}
		if body.Find("p").Length() > 0 {
			separators["p"] = true
			if body.Find("p").Length() != len(truth.Paragraphs)+1 {
				t.Errorf("chapter %d: %d <p>, want %d", i+1, body.Find("p").Length(), len(truth.Paragraphs)+1)
			}
		}
		if body.Find("br").Length() > 0 {
			separators["br"] = true
		}
		prev, next := "/"+b.ID+"/", "/"+b.ID+"/"
		if i > 0 {
			prev = "/" + b.ID + "/" + b.Chapters[i-1].ID + ".html"
		}
		if i+1 < len(b.Chapters) {
			next = "/" + b.ID + "/" + b.Chapters[i+1].ID + ".html"
		}
		if got := doc.Find("#pb_prev").AttrOr("href", ""); got != prev {
			t.Errorf("chapter %d: #pb_prev = %q, want %q", i+1, got, prev)
		}
		if got := doc.Find("#pb_next").AttrOr("href", ""); got != next {
			t.Errorf("chapter %d: #pb_next = %q, want %q", i+1, got, next)
		}
	}
	if !separators["p"] || !separators["br"] {
		t.Errorf("paragraph separators seen %v, want both <br> and <p>", separators)
	}
	last := b.Chapters[len(b.Chapters)-1]
	doc := fetched{body: serve(t, s, http.MethodGet, "/"+b.ID+"/"+last.ID+".html").Body.Bytes()}.doc(t)
	if got := doc.Find("#pb_next").AttrOr("href", ""); got != "/"+b.ID+"/" {
		t.Errorf("last chapter: #pb_next = %q, want the book home", got)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	cfg := smallConfig() // categories 1..3
	s := New(cfg)
	b := s.Books()[0]
	other := s.Books()[1]
	tests := []struct {
		path   string
		method string
		want   int
	}{
		{path: "/9999999/", want: 404},
		{path: "/0" + b.ID + "/", want: 404},
		{path: "/" + b.ID, want: 404},
		{path: "/" + b.ID + "/123456789.html", want: 404},
		{path: "/" + b.ID + "/" + other.Chapters[0].ID + ".html", want: 404},
		{path: "/" + b.ID + "/page-0.html", want: 404},
		{path: "/" + b.ID + "/page-.html", want: 404},
		{path: "/" + b.ID + "/page--1.html", want: 404},
		{path: "/" + b.ID + "/page-1x.html", want: 404},
		{path: "/" + b.ID + "/page-99999999999999999999999.html", want: 404},
		{path: "/" + b.ID + "/page-9223372036854775807.html", want: 200},
		{path: "/" + b.ID + "/page-1.htm", want: 404},
		{path: "/" + b.ID + "/abc.html", want: 404},
		{path: "/" + b.ID + "/" + b.Chapters[0].ID + ".html/", want: 404},
		{path: "/fenlei0_1.html", want: 404},
		{path: "/fenlei4_1.html", want: 404},
		{path: "/fenlei1_0.html", want: 404},
		{path: "/fenlei1_.html", want: 404},
		{path: "/fenlei1.html", want: 404},
		{path: "/fenlei1_1", want: 404},
		{path: "/fenlei+1_1.html", want: 404},
		{path: "/fenlei99999999999999999999_1.html", want: 404},
		{path: "/fenlei1_99999999999999999999.html", want: 404},
		{path: "/index.html", want: 404},
		{path: "/abc/", want: 404},
		{path: "//", want: 404},
		{path: "/_sim", want: 404},
		{path: "/", method: http.MethodPost, want: 405},
		{path: "/", method: http.MethodHead, want: 200},
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

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func FuzzHandler(f *testing.F) {
	s := New(smallConfig())
	b := s.Books()[0]
	fuzzHandler(f, s, "/", "/fenlei1_1.html", "/"+b.ID+"/", "/"+b.ID+"/page-2.html", "/"+b.ID+"/"+b.Chapters[0].ID+".html", "/fenlei_.html", "/1/page-.html")
}

// fuzzHandler checks that s answers any path of the site 200 or 404, from seeds.
func fuzzHandler(f *testing.F, s *Site, seeds ...string) {
	for _, p := range seeds {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		u := &url.URL{Path: "/" + strings.TrimPrefix(path, "/")}
		if strings.HasPrefix(u.Path, "/_sim/") {
			return
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		req.URL = u
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
			t.Errorf("GET %q: status %d", u.Path, rec.Code)
		}
	})
}
