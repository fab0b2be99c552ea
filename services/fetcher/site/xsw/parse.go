package xsw

import (
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"

	"github.com/xswtw/xsw/events"
	"github.com/xswtw/xsw/services/fetcher/site"
)

// Page kinds, as named in a site.ParseError.
const (
	pageHome    = "home"
	pageListing = "listing"
	pageBook    = "book"
	pageTOC     = "toc"
	pageChapter = "chapter"
)

// sel compiles a constant CSS selector once, at package initialisation.
func sel(s string) cascadia.Selector { return cascadia.MustCompile(s) }

// page is a parsed page with what every parser needs to report and resolve.
type page struct {
	kind string
	url  *url.URL // the page's URL, never nil
	doc  *goquery.Document
	// origin is scheme://host of url.
	origin string
	// dir is the directory of url's path when plain links may be resolved against it
	// by joining strings (see plainLink), else "".
	dir string
}

// parsePage parses body as the page of the given kind at pageURL (see site.ParsePage).
// A nil pageURL means the adapter's home page; a relative one is taken relative to it.
func (s *Source) parsePage(kind string, body []byte, pageURL *url.URL) (*page, error) {
	pageURL = s.base.PageURL(pageURL)
	doc, err := site.ParsePage(kind, body, pageURL)
	if err != nil {
		return nil, err
	}
	p := newPage(kind, pageURL)
	p.doc = doc
	return p, nil
}

// newPage returns the page of the given kind at the absolute URL u, not parsed yet.
func newPage(kind string, u *url.URL) *page {
	return &page{kind: kind, url: u, origin: u.Scheme + "://" + u.Host, dir: plainDir(u)}
}

// errorf returns a *site.ParseError for the page.
func (p *page) errorf(format string, args ...any) error {
	return site.ParseErrorf(p.kind, p.url, format, args...)
}

// resolve returns href resolved against the page as an absolute URL, or "" when href
// is empty or does not parse. Used for links that need not be on the site (images).
func (p *page) resolve(href string) string {
	href = strings.TrimSpace(href)
	if href == "" {
		return ""
	}
	ref, err := url.Parse(href)
	if err != nil {
		return ""
	}
	u := p.url.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return ""
	}
	return u.String()
}

// siteLink resolves href against the page and returns the escaped path it names when it
// is a link to the site: an http(s) URL on the page's own host, or on xsw.tw or one of
// its subdomains. The page's origin plus the path is the link's canonical URL.
func (p *page) siteLink(href string) (string, bool) {
	href = strings.TrimSpace(href)
	if href == "" || strings.HasPrefix(href, "#") {
		return "", false
	}
	if path, ok := p.plainLink(href); ok {
		return path, true
	}
	return p.parsedLink(href)
}

// parsedLink is siteLink for any href: resolved with url.Parse.
func (p *page) parsedLink(href string) (string, bool) {
	ref, err := url.Parse(href)
	if err != nil {
		return "", false
	}
	u := p.url.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false
	}
	if !strings.EqualFold(u.Host, p.url.Host) {
		h := strings.ToLower(u.Hostname())
		if h != siteDomain && !strings.HasSuffix(h, "."+siteDomain) {
			return "", false
		}
	}
	return u.EscapedPath(), true
}

// plainLink resolves the links the site writes most, a root-relative path
// (/1721851/251000002.html) or a relative one (251000001.html), without url.Parse: when
// href and the page's directory are plain paths (see plainPath), resolving href is
// joining them, and the result is its own escaped form. ok is false for any other href,
// or when the page's URL is not a plain http(s) path.
func (p *page) plainLink(href string) (string, bool) {
	if p.dir == "" || !plainPath(href) {
		return "", false
	}
	if href[0] == '/' {
		return href, true
	}
	return p.dir + href, true
}

// plainDir returns the directory of u's path, up to its last slash, when links may be
// resolved against it as plainLink does: u is an http(s) URL whose escaped path is
// plain. It returns "" otherwise.
func plainDir(u *url.URL) string {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" {
		return ""
	}
	path := u.EscapedPath()
	if path == "" {
		return "/" // resolving against an empty path roots the link
	}
	if path[0] != '/' || !plainPath(path) {
		return ""
	}
	return path[:strings.LastIndexByte(path, '/')+1]
}

// plainPath reports whether s is a path that resolving leaves as it is: segments of
// ASCII letters, digits, '-', '_' and '.' (never "." or ".."), separated by single
// slashes, with an optional leading and trailing slash. Such a path needs no escaping
// and has no dot segment to remove.
func plainPath(s string) bool {
	if s == "" || s == "/" || strings.HasPrefix(s, "//") {
		return s == "/"
	}
	rest := strings.TrimPrefix(s, "/")
	rest = strings.TrimSuffix(rest, "/")
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
	}
	return true
}

// chapterLink reports whether href is a link to a chapter of book bookID, a path
// ending in /{bookID}/{chapterID}.html, and returns the chapter id and canonical URL.
func (p *page) chapterLink(href, bookID string) (chapterID, link string, ok bool) {
	path, ok := p.siteLink(href)
	if !ok {
		return "", "", false
	}
	book, chapter, ok := splitChapterPath(path)
	if !ok || book != bookID {
		return "", "", false
	}
	return chapter, p.origin + path, true
}

// splitChapterPath splits a path ending in /{book}/{chapter}.html, both digits, the
// chapter id no longer than an id may be (events.MaxBookIDLen).
func splitChapterPath(path string) (book, chapter string, ok bool) {
	rest, ok := strings.CutSuffix(path, ".html")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", false
	}
	chapter, rest = rest[i+1:], rest[:i]
	book = rest[strings.LastIndexByte(rest, '/')+1:]
	if !isDigits(book) || !isDigits(chapter) || len(chapter) > events.MaxBookIDLen {
		return "", "", false
	}
	return book, chapter, true
}

// bookLink reports whether href is a link to a book's home page, a path ending in
// /{bookID}/ (or /{bookID}) with a canonical book id, and returns the id and the
// canonical URL.
func (p *page) bookLink(href string) (bookID, link string, ok bool) {
	path, ok := p.siteLink(href)
	if !ok {
		return "", "", false
	}
	rest := strings.TrimSuffix(path, "/")
	id := rest[strings.LastIndexByte(rest, '/')+1:]
	if !canonicalNumber(id, maxBookIDLen) {
		return "", "", false
	}
	return id, p.origin + path, true
}

// attr returns the trimmed value of attribute name of the first node of s.
func attr(s *goquery.Selection, name string) string {
	v, _ := s.Attr(name)
	return strings.TrimSpace(v)
}

// text returns the text of s with white space normalised (see site.CollapseSpace).
func text(s *goquery.Selection) string {
	// An element holding a single text node, as most links do: its text without a copy.
	if len(s.Nodes) == 1 {
		if c := s.Nodes[0].FirstChild; c != nil && c == s.Nodes[0].LastChild && c.Type == html.TextNode {
			return site.CollapseSpace(c.Data)
		}
	}
	return site.CollapseSpace(s.Text())
}

// label strips a leading label such as 作者： from s: one of names followed by a
// full-width or half-width colon, with optional white space around it. It reports
// false when s does not start with any of names and a colon.
func label(s string, names ...string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, name := range names {
		rest, ok := strings.CutPrefix(s, name)
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if v, ok := strings.CutPrefix(rest, "："); ok {
			return strings.TrimSpace(v), true
		}
		if v, ok := strings.CutPrefix(rest, ":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return s, false
}
