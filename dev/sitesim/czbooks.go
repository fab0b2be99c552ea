package sitesim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file renders the czbooks.net flavour (Config.Site = SiteCzbooks), as
// shared/SOURCE_SITE_CZBOOKS.md describes the site. Where the
// description is silent the choices are ours and the package doc lists them.

// czbooksHost is the host that czbooks.net pages name in their links. Pages
// never name the simulator's own address: a client maps the links onto its
// base URL, as it must for the real site.
const czbooksHost = "czbooks.net"

// czbooksSiteName is the name of czbooks.net.
const czbooksSiteName = "小說狂人"

// czbooksIDLimit bounds the length of an id in a czbooks.net path.
const czbooksIDLimit = 32

// parseCzbooksPath recognises the czbooks.net URL forms: /, /c/{slug},
// /c/{slug}/{n} (n >= 2, without leading zeros), /n/{book} and
// /n/{book}/{chapter}. Whether the slug or ids exist is for render to say.
func parseCzbooksPath(p string) route {
	if p == "/" {
		return route{kind: pageHome}
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if !strings.HasPrefix(p, "/") || len(parts) < 2 || len(parts) > 3 {
		return route{}
	}
	for _, part := range parts[1:] {
		if !isAlnumID(part) {
			return route{}
		}
	}
	switch parts[0] {
	case "c":
		rt := route{kind: pageListing, slug: parts[1], page: 1}
		if len(parts) == 3 {
			n, ok := number(parts[2])
			if !ok || n < 2 || strconv.Itoa(n) != parts[2] {
				return route{} // page 1 is /c/{slug} only
			}
			rt.page = n
		}
		return rt
	case "n":
		if len(parts) == 2 {
			return route{kind: pageBook, bookID: parts[1]}
		}
		return route{kind: pageChapter, bookID: parts[1], chapterID: parts[2]}
	}
	return route{}
}

// isAlnumID reports whether s is a plausible id or slug: 1 to 32 ASCII
// letters and digits.
func isAlnumID(s string) bool {
	if s == "" || len(s) > czbooksIDLimit {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// charset is the encoding that pages declare: czbooks.net declares the one
// its bytes use.
func (s *Site) charset() string {
	if s.cfg.Big5 {
		return "big5"
	}
	return "utf-8"
}

// renderCzbooks renders the czbooks.net page at path p; the caller does not
// hold s.mu.
func (s *Site) renderCzbooks(p string) response {
	rt := parseCzbooksPath(p)
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch rt.kind {
	case pageHome:
		return response{status: http.StatusOK, body: s.czHomePage()}
	case pageListing:
		cat := s.categoryBySlug(rt.slug)
		if cat == 0 || rt.page > s.listingPages(cat) {
			break // past the last page: 404
		}
		return response{status: http.StatusOK, body: s.czListingPage(cat, rt.page)}
	case pageBook:
		if b, ok := s.cat.byID[rt.bookID]; ok {
			return response{
				status:   http.StatusOK,
				body:     s.czBookPage(b),
				etag:     fmt.Sprintf(`"%s-%d-%d"`, b.id, len(b.chapters), b.updated.Unix()),
				modified: b.updated,
			}
		}
	case pageChapter:
		if b, ok := s.cat.byID[rt.bookID]; ok {
			if pos, ok := b.byID[rt.chapterID]; ok {
				return response{status: http.StatusOK, body: s.czChapterPage(b, pos)}
			}
		}
	}
	return s.errorPage(http.StatusNotFound, "")
}

// categoryBySlug returns the number of the category with that slug, 0 if
// there is none.
func (s *Site) categoryBySlug(slug string) int {
	for id := 1; id <= s.cfg.Categories; id++ {
		if czbooksCategories[id].Slug == slug {
			return id
		}
	}
	return 0
}

// listingPages is the number of listing pages of a category (at least 1).
func (s *Site) listingPages(cat int) int {
	n, per := len(s.cat.byCategory[cat]), s.cfg.BooksPerPage
	return max(1, (n+per-1)/per)
}

// Link forms. czbooks.net links are mostly protocol-relative, some
// root-relative, some absolute.
const (
	linkProtocolRelative = iota
	linkRootRelative
	linkAbsolute
)

// czLink writes a link to path on czbooks.net in the given form.
func czLink(form int, path string) string {
	switch form {
	case linkRootRelative:
		return path
	case linkAbsolute:
		return "https://" + czbooksHost + path
	}
	return "//" + czbooksHost + path
}

// czMixedLink writes the i-th link of a list: mostly protocol-relative, one
// in five root-relative and one in five absolute.
func czMixedLink(i int, path string) string {
	switch i % 5 {
	case 1:
		return czLink(linkRootRelative, path)
	case 3:
		return czLink(linkAbsolute, path)
	}
	return czLink(linkProtocolRelative, path)
}

func bookPath(id string) string            { return "/n/" + id }
func chapterPath(bookID, id string) string { return "/n/" + bookID + "/" + id }

// czListingPath is the path of page n of a category: /c/{slug} for page 1.
func czListingPath(slug string, n int) string {
	if n == 1 {
		return "/c/" + slug
	}
	return "/c/" + slug + "/" + strconv.Itoa(n)
}

// formatCount writes n with thousands separators, as in 5,678.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatCzbooksUpdated writes t as the 更新時間 cell does: YYYY-MM-DD, Taiwan
// time (the original project's tests show a date only).
func formatCzbooksUpdated(t time.Time) string {
	return t.In(taipei).Format(time.DateOnly)
}

// czHead writes the document start, the site header with the category menu
// (ul.nav.menu, links protocol-relative with padded text) and the mobile
// drawer, which repeats the menu with root-relative links.
func (s *Site) czHead(w *pageWriter, title string) {
	w.WriteString("<!DOCTYPE html>\n<html lang=\"zh-Hant-TW\">\n<head>\n")
	w.printf("<meta charset=\"%s\">\n", s.charset())
	w.WriteString(`<meta name="viewport" content="width=device-width, initial-scale=1">` + "\n")
	w.printf("<title>%s</title>\n", esc(title))
	w.WriteString(`<link rel="stylesheet" href="//czbooks.net/static/css/main.css">` + "\n")
	w.WriteString(`<script async src="https://pagead2.googlesyndication.com/pagead/js/adsbygoogle.js"></script>` + "\n")
	w.WriteString("</head>\n<body>\n<header class=\"header\">\n<div class=\"container\">\n")
	w.printf("<a class=\"logo\" href=\"//%s/\">%s</a>\n", czbooksHost, czbooksSiteName)
	w.WriteString("<ul class=\"nav menu\">\n")
	w.printf("<li><a href=\"//%s/\">首頁</a></li>\n", czbooksHost)
	for _, c := range s.Categories() {
		w.printf("<li class=\"menu-item\"><a href=\"%s\">\n    %s\n  </a></li>\n", czLink(linkProtocolRelative, czListingPath(c.Slug, 1)), esc(c.Name))
	}
	w.printf("<li><a href=\"//%s/rank\">排行榜</a></li>\n", czbooksHost)
	w.WriteString("</ul>\n")
	w.WriteString(`<form class="search-form" action="//czbooks.net/s/" method="get"><input type="text" name="q" placeholder="搜尋書名或作者"></form>` + "\n")
	w.WriteString("</div>\n</header>\n<nav class=\"drawer\">\n<ul class=\"nav menu mobile-menu\">\n")
	for _, c := range s.Categories() {
		w.printf("<li><a href=\"%s\"><i class=\"fa fa-book\"></i> %s</a></li>\n", czLink(linkRootRelative, czListingPath(c.Slug, 1)), esc(c.Name))
	}
	w.WriteString("</ul>\n</nav>\n<div class=\"main\">\n")
}

// czFoot closes the main block and writes the footer, which links the first
// three categories again with absolute links.
func (s *Site) czFoot(w *pageWriter) {
	w.WriteString("</div>\n<footer class=\"footer\">\n<ul class=\"nav menu footer-menu\">\n")
	for _, c := range s.Categories()[:min(3, s.cfg.Categories)] {
		w.printf("<li><a href=\"%s\">%s</a></li>\n", czLink(linkAbsolute, czListingPath(c.Slug, 1)), esc(c.Name))
	}
	w.WriteString("</ul>\n")
	w.WriteString(`<p class="copyright">小說狂人 czbooks.net 本站小說均來自網友上傳，如有侵權請來信告知。</p>` + "\n")
	w.WriteString(`<p><a href="https://www.facebook.com/czbooks" rel="nofollow">Facebook</a> | <a href="//czbooks.net/contact">聯絡我們</a></p>` + "\n")
	w.WriteString("</footer>\n</body>\n</html>\n")
}

// czHomePage shows the menus (every category linked twice, the first three
// three times) and the ten first books.
func (s *Site) czHomePage() string {
	var w pageWriter
	s.czHead(&w, czbooksSiteName+" - 免費小說線上閱讀")
	w.WriteString("<div class=\"index-recommend\">\n<h2 class=\"title\">熱門推薦</h2>\n<ul class=\"recommend-list\">\n")
	for i, b := range s.cat.books[:min(10, len(s.cat.books))] {
		w.printf("<li><a href=\"%s\">%s</a> <span class=\"author\">%s</span></li>\n", czMixedLink(i, bookPath(b.id)), esc(b.name), esc(b.author))
	}
	w.WriteString("</ul>\n</div>\n")
	s.czFoot(&w)
	return w.String()
}

// czListingPage shows one page of a category: li.novel-item-wrapper items
// without descriptions, then a pagination block. The caller checked that
// the page exists.
func (s *Site) czListingPage(cat, page int) string {
	c := czbooksCategories[cat]
	last := s.listingPages(cat)
	var w pageWriter
	title := c.Name + "小說"
	if page > 1 {
		title += fmt.Sprintf(" - 第%d頁", page)
	}
	s.czHead(&w, title+" - "+czbooksSiteName)
	w.printf("<h1 class=\"category-title\">%s</h1>\n<ul class=\"novel-list\">\n", esc(c.Name))
	books := s.cat.byCategory[cat]
	per := s.cfg.BooksPerPage
	from := (page - 1) * per
	for _, b := range books[from:min(from+per, len(books))] {
		s.czNovelItem(&w, b)
	}
	w.WriteString("</ul>\n<ul class=\"pagination\">\n")
	if page > 1 {
		w.printf("<li class=\"prev\"><a href=\"%s\">上一頁</a></li>\n", czLink(linkProtocolRelative, czListingPath(c.Slug, page-1)))
	}
	for n := max(1, page-2); n <= min(last, page+2); n++ {
		if n == page {
			w.printf("<li class=\"active\"><span>%d</span></li>\n", n)
			continue
		}
		w.printf("<li><a href=\"%s\">%d</a></li>\n", czLink(linkProtocolRelative, czListingPath(c.Slug, n)), n)
	}
	if page < last {
		w.printf("<li class=\"next\"><a href=\"%s\">下一頁</a></li>\n", czLink(linkProtocolRelative, czListingPath(c.Slug, page+1)))
	}
	w.WriteString("</ul>\n")
	s.czFoot(&w)
	return w.String()
}

// czNovelItem writes one book of a listing. One book in five has no status
// block; a book without chapters has an empty newest-chapter block.
func (s *Site) czNovelItem(w *pageWriter, b *book) {
	w.WriteString("<li class=\"novel-item-wrapper\">\n<div class=\"novel-item\">\n")
	w.printf("<div class=\"novel-item-cover-wrapper\"><a href=\"%s\">", czMixedLink(b.index, bookPath(b.id)))
	w.printf("<img class=\"novel-item-thumbnail\" src=\"//img.czbooks.net/cover/%s.jpg\" alt=\"%s\">", b.id, esc(b.name))
	w.printf("<div class=\"novel-item-title\">%s</div></a></div>\n", esc(b.name))
	w.WriteString("<div class=\"novel-item-info-wrapper\">\n")
	w.printf("<div class=\"novel-item-author\">作者：<a href=\"//%s/a/%s\">%s</a></div>\n", czbooksHost, url.PathEscape(b.author), esc(b.author))
	if n := len(b.chapters); n > 0 {
		c := b.chapters[n-1]
		w.printf("<div class=\"novel-item-newest-chapter\">最新章節：<a href=\"%s\">%s</a></div>\n", czLink(linkProtocolRelative, chapterPath(b.id, c.id)), esc(c.title))
	} else {
		w.WriteString("<div class=\"novel-item-newest-chapter\"></div>\n")
	}
	if b.index%5 != 4 {
		w.WriteString("<div class=\"novel-item-status\"><ul class=\"nav\">")
		w.printf("<li><i class=\"fa fa-bookmark\"></i> %s</li>", formatCount(b.bookmarks))
		w.printf("<li><i class=\"fa fa-eye\"></i> %s</li>", formatCount(b.views))
		w.WriteString("</ul></div>\n")
	}
	w.WriteString("</div>\n</div>\n</li>\n")
}

// czBookPage is the book page: metadata and the whole chapter list, in
// div.novel-detail. Volume headers (li.volume) precede their first chapter;
// in one book of three they wrap a link to that chapter. One book of three
// has an ad li without a link after its tenth chapter.
func (s *Site) czBookPage(b *book) string {
	c := czbooksCategories[b.category]
	var w pageWriter
	s.czHead(&w, fmt.Sprintf("%s - %s - %s", b.name, b.author, czbooksSiteName))
	w.WriteString("<div class=\"novel-detail\">\n")
	w.printf("<div class=\"thumbnail\"><img src=\"//img.czbooks.net/cover/%s.jpg\" alt=\"%s\"></div>\n", b.id, esc(b.name))
	w.WriteString("<div class=\"info\">\n")
	w.printf("<span class=\"title\">《%s》</span>\n", esc(b.name))
	w.printf("<span class=\"author\">作者: <a href=\"//%s/a/%s\">%s</a></span>\n", czbooksHost, url.PathEscape(b.author), esc(b.author))
	w.WriteString("</div>\n<div class=\"state\">\n<table>\n<tbody>\n")
	w.printf("<tr><td>狀 態：</td><td>%s</td><td>更新時間：</td><td>%s</td></tr>\n", b.status(), formatCzbooksUpdated(b.updated))
	w.printf("<tr><td>收 藏 數：</td><td>%s</td><td>觀　看　數：</td><td>%s</td></tr>\n", formatCount(b.bookmarks), formatCount(b.views))
	w.printf("<tr><td>分 類：</td><td colspan=\"3\"><a id=\"novel-category\" href=\"/c/%s\">%s</a></td></tr>\n", c.Slug, esc(c.Name))
	w.WriteString("</tbody>\n</table>\n</div>\n")
	w.printf("<div class=\"description\">\n    %s\n  </div>\n", esc(b.intro))
	w.WriteString("<ul class=\"nav chapter-list\">\n")
	vol := 0
	for i, ch := range b.chapters {
		if vol < len(b.volumes) && b.volumes[vol].first == i {
			v := b.volumes[vol]
			if b.index%3 == 1 {
				w.printf("<li class=\"volume\"><a href=\"%s\">%s</a></li>\n", czLink(linkProtocolRelative, chapterPath(b.id, ch.id)), esc(v.title))
			} else {
				w.printf("<li class=\"volume\">%s</li>\n", esc(v.title))
			}
			vol++
		}
		w.printf("<li><a href=\"%s\">%s</a></li>\n", czMixedLink(i*7+b.index, chapterPath(b.id, ch.id)), esc(ch.title))
		if i == 9 && b.index%3 == 0 {
			w.WriteString("<li class=\"ad\"><ins class=\"adsbygoogle\" style=\"display:block\" data-ad-format=\"fluid\"></ins></li>\n")
		}
	}
	w.WriteString("</ul>\n</div>\n")
	s.czFoot(&w)
	return w.String()
}

// czChapterPage shows a chapter: div.name with the title and div.content
// with the text, in .chapter-detail, and the previous/next links outside
// div.content (to the book page at either end). The text comes as <p>
// paragraphs or as <br>-separated lines, indented with U+3000 or NBSP, with
// ads (div.ad, ins, script) and a line naming czbooks.net inside.
func (s *Site) czChapterPage(b *book, pos int) string {
	c := b.chapters[pos]
	var w pageWriter
	s.czHead(&w, fmt.Sprintf("%s - %s - %s", c.title, b.name, czbooksSiteName))
	prev, next := bookPath(b.id), bookPath(b.id)
	if pos > 0 {
		prev = chapterPath(b.id, b.chapters[pos-1].id)
	}
	if pos+1 < len(b.chapters) {
		next = chapterPath(b.id, b.chapters[pos+1].id)
	}
	nav := fmt.Sprintf("<a class=\"prev-chapter\" href=\"%s\">上一章</a> <a class=\"chapter-list\" href=\"%s\">目錄</a> <a class=\"next-chapter\" href=\"%s\">下一章</a>",
		czLink(linkProtocolRelative, prev), czLink(linkProtocolRelative, bookPath(b.id)), czLink(linkProtocolRelative, next))

	w.WriteString("<div class=\"chapter-detail\">\n")
	w.printf("<div class=\"novel-title\"><a href=\"%s\">%s</a></div>\n", czLink(linkProtocolRelative, bookPath(b.id)), esc(b.name))
	w.printf("<div class=\"name\">%s</div>\n", esc(c.title))
	w.printf("<div class=\"chapter-nav top\">%s</div>\n", nav)
	w.WriteString("<div class=\"content\">\n")
	w.WriteString("<div class=\"ad\"><span>【廣告】下載小說狂人App，離線閱讀更順暢</span></div>\n")
	paras := chapterText(s.cfg.Seed, s.cat.textKey(b.id, c.id), b.hero)
	siteLine := "小說狂人 czbooks.net 最新章節，請記住本站網址。"
	credit := len(paras) - 1 // the paragraph after which the site line comes
	if pos%2 == 1 {
		credit = len(paras) / 2
	}
	for i, p := range paras {
		switch pos % 3 {
		case 0:
			w.printf("<p>　　%s</p>\n", esc(p))
		case 1:
			w.printf("&nbsp;&nbsp;&nbsp;&nbsp;%s<br>\n<br>\n", esc(p))
		default:
			w.printf("　　%s&nbsp;<br>\n", esc(p))
		}
		if i == 1 {
			w.WriteString("<ins class=\"adsbygoogle\" style=\"display:block\" data-ad-slot=\"1234567890\">推薦閱讀：更多精彩小說</ins>\n")
			w.WriteString("<script>(adsbygoogle = window.adsbygoogle || []).push({}); var chapterTitle = \"" + esc(c.title) + "\";</script>\n")
		}
		if i == credit {
			if pos%3 == 0 {
				w.printf("<p>%s</p>\n", siteLine)
			} else {
				w.printf("%s<br>\n", siteLine)
			}
		}
	}
	w.WriteString("</div>\n")
	w.printf("<div class=\"chapter-nav bottom\">%s</div>\n", nav)
	w.WriteString("</div>\n")
	s.czFoot(&w)
	return w.String()
}

// czbooksBlankPage is a 200 page of czbooks.net with none of the expected
// elements.
func czbooksBlankPage(charset string) string {
	return "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"" + charset + "\">\n<title>" + czbooksSiteName +
		"</title>\n</head>\n<body>\n<div class=\"notice\">網站維護中，請稍後再訪問。</div>\n</body>\n</html>\n"
}
