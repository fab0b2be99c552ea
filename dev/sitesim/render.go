package sitesim

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pageKind is the type of a site page.
type pageKind int

const (
	pageOther pageKind = iota
	pageHome
	pageListing
	pageBook
	pageTOC
	pageChapter
)

func (k pageKind) String() string {
	switch k {
	case pageHome:
		return "home"
	case pageListing:
		return "listing"
	case pageBook:
		return "book"
	case pageTOC:
		return "toc"
	case pageChapter:
		return "chapter"
	}
	return "other"
}

// route is a parsed site path. Numbers are validated as digits only; values
// too large for an int make the path invalid (pageOther).
type route struct {
	kind      pageKind
	category  int
	slug      string // czbooks.net listing
	page      int
	bookID    string
	chapterID string
}

// parsePath recognises the site's URL forms: /, /fenlei{cat}_{page}.html,
// /{book}/, /{book}/page-{n}.html and /{book}/{chapter}.html.
func parsePath(p string) route {
	if p == "/" {
		return route{kind: pageHome}
	}
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return route{}
	}
	if name, ok := strings.CutPrefix(rest, "fenlei"); ok {
		name, ok = strings.CutSuffix(name, ".html")
		cat, page, found := strings.Cut(name, "_")
		c, okc := number(cat)
		n, okp := number(page)
		if !ok || !found || !okc || !okp {
			return route{}
		}
		return route{kind: pageListing, category: c, page: n}
	}
	bookID, file, found := strings.Cut(rest, "/")
	if !found || !isDigits(bookID) || len(bookID) > 12 {
		return route{}
	}
	if file == "" {
		return route{kind: pageBook, bookID: bookID}
	}
	name, ok := strings.CutSuffix(file, ".html")
	if !ok {
		return route{}
	}
	if page, ok := strings.CutPrefix(name, "page-"); ok {
		n, ok := number(page)
		if !ok {
			return route{}
		}
		return route{kind: pageTOC, bookID: bookID, page: n}
	}
	if !isDigits(name) || len(name) > 12 {
		return route{}
	}
	return route{kind: pageChapter, bookID: bookID, chapterID: name}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// number parses a decimal of digits only that fits an int.
func number(s string) (int, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// pageKind returns the type of the site page at path p.
func (s *Site) pageKind(p string) pageKind {
	if s.cfg.Site == SiteCzbooks {
		return parseCzbooksPath(p).kind
	}
	return parsePath(p).kind
}

// render renders the page at path p.
func (s *Site) render(p string) response {
	if s.cfg.Site == SiteCzbooks {
		return s.renderCzbooks(p)
	}
	rt := parsePath(p)
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch rt.kind {
	case pageHome:
		return response{status: http.StatusOK, body: s.homePage()}
	case pageListing:
		if rt.category < 1 || rt.category > s.cfg.Categories || rt.page < 1 {
			break
		}
		return response{status: http.StatusOK, body: s.listingPage(rt.category, rt.page)}
	case pageBook:
		if b, ok := s.cat.byID[rt.bookID]; ok {
			return response{
				status:   http.StatusOK,
				body:     s.bookPage(b),
				etag:     fmt.Sprintf(`"%s-%d-%d"`, b.id, len(b.chapters), b.updated.Unix()),
				modified: b.updated,
			}
		}
	case pageTOC:
		if b, ok := s.cat.byID[rt.bookID]; ok && rt.page >= 1 {
			return response{
				status:   http.StatusOK,
				body:     s.tocPage(b, rt.page),
				etag:     fmt.Sprintf(`"%s-p%d-%d-%d"`, b.id, rt.page, len(b.chapters), b.updated.Unix()),
				modified: b.updated,
			}
		}
	case pageChapter:
		if b, ok := s.cat.byID[rt.bookID]; ok {
			if pos, ok := b.byID[rt.chapterID]; ok {
				return response{status: http.StatusOK, body: s.chapterPage(b, pos)}
			}
		}
	}
	return s.errorPage(http.StatusNotFound, "")
}

const siteName = "台灣小說網"

var esc = html.EscapeString

// pageWriter builds a page.
type pageWriter struct{ strings.Builder }

func (w *pageWriter) printf(format string, args ...any) { fmt.Fprintf(w, format, args...) }

// head writes the document start and the site header. httpEquiv selects the
// <meta http-equiv> form of the Big5 declaration.
func (w *pageWriter) head(title string, httpEquiv bool) {
	w.WriteString("<!DOCTYPE html>\n<html>\n<head>\n")
	if httpEquiv {
		w.WriteString(`<meta http-equiv="Content-Type" content="text/html; charset=big5">` + "\n")
	} else {
		w.WriteString("<meta charset=big5>\n")
	}
	w.WriteString(`<meta name="viewport" content="width=device-width, initial-scale=1.0, maximum-scale=1.0, user-scalable=no">` + "\n")
	w.printf("<title>%s</title>\n", esc(title))
	w.WriteString(`<link rel="stylesheet" href="/css/style.css" type="text/css">` + "\n</head>\n<body>\n")
	w.WriteString(`<div class="header"><div class="logo"><a href="/">` + siteName + `</a></div>` +
		`<div class="search"><form action="/search.php" method="post"><input type="text" name="searchkey" placeholder="書名或作者"><button type="submit">搜索</button></form></div></div>` + "\n")
}

func (w *pageWriter) foot() {
	w.WriteString(`<div class="footer"><a href="/">首頁</a> | <a href="/bookcase.php">書架</a> | <a href="#top">回頂部</a><p>本站所有小說均來自網友上傳，如有侵權請聯繫我們刪除。</p></div>` + "\n")
	w.WriteString(`<script type="text/javascript" src="/js/tj.js"></script>` + "\n</body>\n</html>\n")
}

// homePage links every category twice: in the nav and in the category list.
func (s *Site) homePage() string {
	var w pageWriter
	w.head(siteName+"_手機小說閱讀網", false)
	w.WriteString(`<div class="nav"><ul>` + "\n")
	for _, c := range s.Categories() {
		w.printf("<li><a href=\"/fenlei%d_1.html\">\n  %s\n</a></li>\n", c.ID, esc(c.Name))
	}
	w.WriteString("</ul></div>\n")
	w.WriteString(`<div class="sort"><h2>小說分類</h2><ul class="sort_list">` + "\n")
	for _, c := range s.Categories() {
		w.printf("<li><a href=\"fenlei%d_1.html\">%s</a></li>\n", c.ID, esc(c.Name))
	}
	w.WriteString("</ul></div>\n")
	w.WriteString(`<div class="hot"><h2>熱門小說</h2><ul>` + "\n")
	for _, b := range s.cat.books[:min(10, len(s.cat.books))] {
		w.printf("<li><a href=\"/%s/\">%s</a> <span>%s</span></li>\n", b.id, esc(b.name), esc(b.author))
	}
	w.WriteString("</ul></div>\n")
	w.foot()
	return w.String()
}

// listingPage shows one page of a category. A page past the end is a normal
// page without any div.bookbox. The listing never says how many pages there
// are, and always offers a next page.
func (s *Site) listingPage(cat, page int) string {
	var w pageWriter
	name := categoryNames[cat]
	w.head(fmt.Sprintf("%s_第%d頁_%s", name, page, siteName), true)
	w.printf("<div class=\"title\"><h1>%s</h1></div>\n<div class=\"list\">\n", esc(name))
	books := s.cat.byCategory[cat]
	per := s.cfg.BooksPerPage
	if page <= len(books)/per+1 { // guards the multiplication for huge pages
		from := (page - 1) * per
		for _, b := range books[min(from, len(books)):min(from+per, len(books))] {
			s.bookBox(&w, b)
		}
	}
	w.WriteString("</div>\n<div class=\"page\">")
	if page > 1 {
		w.printf("<a href=\"/fenlei%d_%d.html\">上一頁</a> ", cat, page-1)
	}
	if page < int(^uint(0)>>1) {
		w.printf("<a href=\"/fenlei%d_%d.html\">下一頁</a>", cat, page+1)
	}
	w.WriteString("</div>\n")
	w.foot()
	return w.String()
}

func (s *Site) bookBox(w *pageWriter, b *book) {
	w.WriteString("<div class=\"bookbox\"><div class=\"p10\">\n")
	w.printf("<div class=\"bookimg\"><a href=\"/%s/\"><img src=\"/images/cover/%s.jpg\" alt=\"%s\"></a></div>\n", b.id, b.id, esc(b.name))
	w.WriteString("<div class=\"bookinfo\">\n")
	w.printf("<h4 class=\"bookname\"><i class=\"iTit\"><a href=\"/%s/\">%s</a></i></h4>\n", b.id, esc(b.name))
	w.printf("<div class=\"author\">作者：%s</div>\n", esc(b.author))
	if n := len(b.chapters); n > 0 {
		c := b.chapters[n-1]
		w.printf("<div class=\"update\"><span>更新：</span><a href=\"/%s/%s.html\">%s</a></div>\n", b.id, c.id, esc(c.title))
	} else {
		w.WriteString("<div class=\"update\"><span>更新：</span></div>\n")
	}
	w.printf("<div class=\"intro_line\">簡介：%s</div>\n", esc(b.intro))
	w.WriteString("</div>\n</div></div>\n")
}

// updatedText writes t as the book page does.
func (s *Site) updatedText(t time.Time) string {
	if s.cfg.Site == SiteCzbooks {
		return formatCzbooksUpdated(t)
	}
	return formatUpdated(t)
}

// formatUpdated writes t as the 更新 line does: YYYY/M/D H:mm:ss, Taiwan time.
func formatUpdated(t time.Time) string {
	t = t.In(taipei)
	return fmt.Sprintf("%d/%d/%d %d:%02d:%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second())
}

// bookPage is the book home: metadata, the 10 newest chapters newest first and
// a link to the table of contents.
func (s *Site) bookPage(b *book) string {
	var w pageWriter
	w.head(fmt.Sprintf("%s最新章節_%s_%s", b.name, b.author, siteName), false)
	genre := categoryNames[b.category]
	w.WriteString("<div class=\"block\">\n")
	w.printf("<div class=\"block_img2\"><img src=\"/images/cover/%s.jpg\" border=\"0\" width=\"92\" height=\"116\" alt=\"%s\"></div>\n", b.id, esc(b.name))
	w.WriteString("<div class=\"block_txt2\">\n")
	w.printf("<h2><a href=\"/%s/\">%s</a></h2>\n", b.id, esc(b.name))
	w.printf("<p>作者：<a href=\"/author/%s\">%s</a></p>\n", url.PathEscape(b.author), esc(b.author))
	w.printf("<p>分類：<a href=\"/fenlei%d_1.html\">%s</a></p>\n", b.category, esc(genre))
	w.printf("<p>狀態：%s</p>\n", b.status())
	w.printf("<p>更新：%s</p>\n", formatUpdated(b.updated))
	if n := len(b.chapters); n > 0 {
		c := b.chapters[n-1]
		w.printf("<p>最新：<a href=\"%s.html\">%s</a></p>\n", c.id, esc(c.title))
	} else {
		w.WriteString("<p>最新：</p>\n")
	}
	w.WriteString("</div>\n</div>\n")
	w.printf("<div class=\"intro\">%s簡介</div>\n<div class=\"intro_info\">%s</div>\n", esc(b.name), esc(b.intro))
	w.printf("<div class=\"intro\">%s最新章節</div>\n<ul class=\"chapter\">\n", esc(b.name))
	for i := len(b.chapters) - 1; i >= max(0, len(b.chapters)-10); i-- {
		c := b.chapters[i]
		w.printf("<li><a href=\"/%s/%s.html\">%s</a></li>\n", b.id, c.id, esc(c.title))
	}
	w.WriteString("</ul>\n<div class=\"book_more\"><a href=\"page-1.html\">查看更多章節</a></div>\n")
	w.foot()
	return w.String()
}

// tocPage is one page of the table of contents, chapters in reading order.
// Links mix the relative ({chapter}.html) and absolute-path
// (/{book}/{chapter}.html) forms. Past the last page the list is empty.
func (s *Site) tocPage(b *book, page int) string {
	var w pageWriter
	last := s.tocPages(b)
	w.head(fmt.Sprintf("%s_章節目錄_第%d頁_%s", b.name, page, siteName), false)
	w.WriteString("<div class=\"cover\">\n")
	w.printf("<h1 class=\"title\"><a href=\"/%s/\">%s</a></h1>\n", b.id, esc(b.name))
	tocNav(&w, page, last, true)
	w.WriteString("<ul class=\"chapter\">\n")
	if page <= last {
		per := s.cfg.ChaptersPerTOCPage
		from := (page - 1) * per
		for i := from; i < min(from+per, len(b.chapters)); i++ {
			c := b.chapters[i]
			if (i*7+b.index)%3 == 0 {
				w.printf("<li><a href=\"/%s/%s.html\">%s</a></li>\n", b.id, c.id, esc(c.title))
			} else {
				w.printf("<li><a href=\"%s.html\">%s</a></li>\n", c.id, esc(c.title))
			}
		}
	}
	w.WriteString("</ul>\n")
	tocNav(&w, page, last, false)
	w.WriteString("</div>\n")
	w.foot()
	return w.String()
}

// tocNav writes a div.page block: 首頁, 上一頁, 下一頁 (class next, absent on
// the last page), 尾頁 and the page count, bracketed in the first block only.
func tocNav(w *pageWriter, page, last int, brackets bool) {
	w.WriteString("<div class=\"page\">\n<a href=\"page-1.html\">首頁</a>\n")
	if page > 1 {
		w.printf("<a href=\"page-%d.html\">上一頁</a>\n", min(page-1, last))
	}
	if page < last {
		w.printf("<a href=\"page-%d.html\" class=\"next\">下一頁</a>\n", page+1)
	}
	w.printf("<a href=\"page-%d.html\">尾頁</a>\n", last)
	if brackets {
		w.printf("<span>(第%d/%d頁)</span>\n", page, last)
	} else {
		w.printf("<span>第%d/%d頁</span>\n", page, last)
	}
	w.WriteString("</div>\n")
}

// chapterPage shows a chapter: #nr_title, the text in div#nr1.mm-content
// (paragraphs separated by <br> in some chapters and <p> in others) ending
// with >>章節報錯<<, and #pb_prev / #pb_next. The first chapter's previous
// link and the last chapter's next link lead to the book home.
func (s *Site) chapterPage(b *book, pos int) string {
	c := b.chapters[pos]
	var w pageWriter
	w.head(fmt.Sprintf("%s_%s_%s", c.title, b.name, siteName), false)
	prev, next := fmt.Sprintf("/%s/", b.id), fmt.Sprintf("/%s/", b.id)
	if pos > 0 {
		prev = fmt.Sprintf("/%s/%s.html", b.id, b.chapters[pos-1].id)
	}
	if pos+1 < len(b.chapters) {
		next = fmt.Sprintf("/%s/%s.html", b.id, b.chapters[pos+1].id)
	}
	w.printf("<div class=\"nr_nav\"><a href=\"/%s/\">%s</a> &gt; <a href=\"/%s/page-%d.html\">目錄</a></div>\n",
		b.id, esc(b.name), b.id, pos/s.cfg.ChaptersPerTOCPage+1)
	w.printf("<div id=\"nr_title\" class=\"nr_title\">%s</div>\n", esc(c.title))
	w.WriteString("<div id=\"nr1\" class=\"mm-content\">\n")
	paras := chapterText(s.cfg.Seed, s.cat.textKey(b.id, c.id), b.hero)
	if pos%4 == 3 {
		for _, p := range paras {
			w.printf("<p>　　%s</p>\n", esc(p))
		}
		w.WriteString("<p>&gt;&gt;章節報錯&lt;&lt;</p>\n")
	} else {
		for _, p := range paras {
			w.printf("&nbsp;&nbsp;&nbsp;&nbsp;%s<br>\n<br>\n", esc(p))
		}
		w.WriteString("&gt;&gt;章節報錯&lt;&lt;\n")
	}
	w.WriteString("</div>\n")
	w.printf("<div class=\"nr_page\"><a id=\"pb_prev\" href=\"%s\">上一章</a> <a id=\"pb_mulu\" href=\"/%s/page-%d.html\">目錄</a> <a id=\"pb_next\" href=\"%s\">下一章</a></div>\n",
		prev, b.id, pos/s.cfg.ChaptersPerTOCPage+1, next)
	w.foot()
	return w.String()
}

// xswBlankPage is a 200 page of m.xsw.tw with none of the expected elements.
const xswBlankPage = "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=big5>\n<title>" + siteName + "</title>\n</head>\n<body>\n<div class=\"tips\">系統維護中，請稍後再訪問。</div>\n</body>\n</html>\n"

// blankPage is a 200 page of the site with none of the expected elements.
func (s *Site) blankPage() string {
	if s.cfg.Site == SiteCzbooks {
		return czbooksBlankPage(s.charset())
	}
	return xswBlankPage
}

// errorPage is a small nginx-style error page of the site.
func (s *Site) errorPage(status int, msg string) response {
	if s.cfg.Site == SiteCzbooks {
		return errorPageCharset(status, msg, `"`+s.charset()+`"`)
	}
	return errorPage(status, msg)
}

// errorPage is a small nginx-style error page that declares Big5.
func errorPage(status int, msg string) response {
	return errorPageCharset(status, msg, "big5")
}

// errorPageCharset is a small nginx-style error page with the given value of
// <meta charset>.
func errorPageCharset(status int, msg, charset string) response {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	body := "<html>\n<head><meta charset=" + charset + "><title>" + text + "</title></head>\n<body>\n<center><h1>" + text + "</h1></center>\n"
	if msg != "" {
		body += "<center>" + esc(msg) + "</center>\n"
	}
	body += "<hr><center>nginx</center>\n</body>\n</html>\n"
	return response{status: status, body: body}
}
