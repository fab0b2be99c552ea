package czbooks

import (
	"net/url"
	"strings"
)

// siteRoot is the site's root, against which the path of a link that names the site or
// joins the base is resolved: its dot segments go, and it can never climb above the base.
var siteRoot = &url.URL{Scheme: "https", Host: siteDomain, Path: "/"}

// link is a link to a page of the site, after the link rule (see the package
// documentation).
type link struct {
	url  string // absolute, on the base: the base, path, then "?" and the query if any
	path string // escaped path relative to the base, from its "/": /n/cr382b
}

// siteLink applies the link rule to href, found on the page at pageURL (absolute): a
// link naming czbooks.net or a subdomain of it keeps its path and query on the base; a
// root-relative link joins the base; another relative link resolves against the page and
// is a site page when it lands on czbooks.net or under the base; a link on the base's
// host is a site page when it is under the base's path. It reports false for anything
// else: another host, another scheme (javascript:, mailto:), a fragment of the page, an
// href that does not parse.
func (s *Source) siteLink(pageURL *url.URL, href string) (link, bool) {
	href = strings.TrimSpace(href)
	if href == "" || href[0] == '#' {
		return link{}, false
	}
	if l, ok := s.plainLink(href); ok {
		return l, true
	}
	return s.parsedLink(pageURL, href)
}

// sitePrefixes are the beginnings of the links to the site that plainLink reads.
var sitePrefixes = []string{"//" + siteDomain, "https://" + siteDomain, "http://" + siteDomain}

// plainLink reads the links the site writes most without url.Parse: a root-relative
// plain path (/n/cr382b), or one on //czbooks.net, https://czbooks.net or
// http://czbooks.net. Such a path needs no resolving (see plainPath), so the rule is a
// join. ok is false for any other href, which parsedLink reads.
func (s *Source) plainLink(href string) (link, bool) {
	path := href
	for _, p := range sitePrefixes {
		if rest, ok := strings.CutPrefix(href, p); ok {
			path = rest
			break
		}
	}
	if !plainPath(path) {
		return link{}, false
	}
	return s.onBase(path, ""), true
}

// plainPath reports whether s is a path that resolving leaves as it is: a slash, then
// segments of ASCII letters, digits, '-', '_' and '.' (never "." or ".."), separated by
// single slashes, with an optional trailing slash. Such a path needs no escaping and has
// no dot segment to remove.
func plainPath(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	start := 1 // of the current segment
	for i := 1; i <= len(s); i++ {
		if i < len(s) && s[i] != '/' {
			if c := s[i]; !(wordByte(c) || c == '-' || c == '.') {
				return false
			}
			continue
		}
		switch seg := s[start:i]; {
		case seg == "" && i < len(s): // an empty segment: //
			return false
		case seg == "." || seg == "..":
			return false
		}
		start = i + 1
	}
	return true
}

// parsedLink is siteLink for any href: read with url.Parse.
func (s *Source) parsedLink(pageURL *url.URL, href string) (link, bool) {
	ref, err := url.Parse(href)
	if err != nil || ref.Opaque != "" || ref.User != nil {
		return link{}, false
	}
	switch {
	case ref.Scheme != "" && ref.Scheme != "http" && ref.Scheme != "https":
		return link{}, false
	case ref.Host != "":
		return s.absoluteLink(ref)
	case ref.Scheme != "": // http:/n/1, without a host: no link we can place
		return link{}, false
	case strings.HasPrefix(ref.Path, "/"):
		u := siteRoot.ResolveReference(ref)
		return s.onBase(u.EscapedPath(), u.RawQuery), true
	}
	return s.absoluteLink(pageURL.ResolveReference(ref))
}

// absoluteLink is siteLink for a URL with a host: a page of the site when the host is
// czbooks.net or a subdomain (its path joins the base, even when the base is on the
// site's domain too), or else the base's host with a path under the base's.
func (s *Source) absoluteLink(u *url.URL) (link, bool) {
	if u.User != nil || u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return link{}, false
	}
	u = siteRoot.ResolveReference(u) // an absolute reference: only its dot segments go
	path := u.EscapedPath()
	if h := strings.ToLower(u.Hostname()); h == siteDomain || strings.HasSuffix(h, "."+siteDomain) {
		return s.onBase(path, u.RawQuery), true
	}
	if !strings.EqualFold(u.Host, s.base.Host()) {
		return link{}, false
	}
	rest, ok := strings.CutPrefix(path, s.base.Prefix())
	if !ok || rest != "" && rest[0] != '/' {
		return link{}, false
	}
	return s.onBase(rest, u.RawQuery), true
}

// onBase returns the link to path (escaped, from the site's root) and query on the base.
// A book or chapter page linked with a trailing slash (/n/0417/) loses it: its URL is
// the one BookURL and ChapterURL build, the ids as written.
func (s *Source) onBase(path, query string) link {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	path = idPath(path)
	u := s.base.URL(path)
	if query != "" {
		u += "?" + query
	}
	return link{url: u, path: path}
}

// idPath returns path without its trailing slash when it names a book (/n/{book}/) or
// a chapter (/n/{book}/{chapter}/), and path itself otherwise.
func idPath(path string) string {
	trimmed, ok := strings.CutSuffix(path, "/")
	if !ok {
		return path
	}
	// Judged on path itself (pathIDs ignores one trailing slash): /n/0417// names
	// nothing, and must not come to name book 0417.
	if _, ok := bookOf(path); ok {
		return trimmed
	}
	if _, _, ok := chapterOf(path); ok {
		return trimmed
	}
	return path
}

// resource returns the absolute URL of a resource the page refers to (an image), which
// need not be on the site: a link to the site follows the link rule, any other resolves
// against the page. It returns "" for an empty or unusable reference.
func (s *Source) resource(pageURL *url.URL, ref string) string {
	if l, ok := s.siteLink(pageURL, ref); ok {
		return l.url
	}
	ref = strings.TrimSpace(ref)
	if ref == "" || ref[0] == '#' {
		return ""
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ""
	}
	u := pageURL.ResolveReference(r)
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return ""
	}
	return u.String()
}

// pathIDs splits a path relative to the base under /{dir}/ into its one or two
// segments, ignoring one trailing slash: /n/cr382b gives cr382b and n = 1,
// /n/cr382b/crdic gives cr382b, crdic and n = 2. n is 0 for any other path.
func pathIDs(path, dir string) (a, b string, n int) {
	rest, ok := strings.CutPrefix(path, "/"+dir+"/")
	if !ok {
		return "", "", 0
	}
	rest = strings.TrimSuffix(rest, "/")
	a, b, two := strings.Cut(rest, "/")
	switch {
	case !two:
		return a, "", 1
	case strings.IndexByte(b, '/') >= 0:
		return "", "", 0
	}
	return a, b, 2
}

// bookOf returns the book a path names: /n/{book}, the id canonical.
func bookOf(path string) (string, bool) {
	id, _, n := pathIDs(path, "n")
	return id, n == 1 && canonicalID(id)
}

// chapterOf returns the chapter a path names: /n/{book}/{chapter}, both canonical.
func chapterOf(path string) (book, chapter string, ok bool) {
	book, chapter, n := pathIDs(path, "n")
	return book, chapter, n == 2 && canonicalID(book) && canonicalID(chapter)
}

// categoryOf returns the category a path names: /c/{slug}, the slug canonical. A later
// listing page (/c/{slug}/2) names none.
func categoryOf(path string) (string, bool) {
	slug, _, n := pathIDs(path, "c")
	return slug, n == 1 && canonicalSlug(slug)
}
