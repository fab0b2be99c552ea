package site

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
)

// Base is the base URL an adapter's Source is built on (SOURCE_<SITE>_URL, else
// Info.DefaultBaseURL), as the Source builds its URLs on it: an http(s) origin and a
// path prefix. A path in the base is kept as a prefix of every URL; its query and
// fragment are dropped. The zero Base is not usable: see NewBase.
type Base struct {
	origin string   // scheme://host, the scheme in lower case
	host   string   // host (and port)
	prefix string   // escaped path without its trailing slash, usually ""
	home   *url.URL // the home page, against which relative page URLs resolve
}

// NewBase returns the base u names, such as https://m.xsw.tw, http://127.0.0.1:8080 for
// a local stand-in, or http://host/prefix/. It fails when u is nil or not an absolute
// http(s) URL with a host.
func NewBase(u *url.URL) (Base, error) {
	scheme := ""
	if u != nil {
		scheme = strings.ToLower(u.Scheme)
	}
	if u == nil || u.Host == "" || scheme != "http" && scheme != "https" {
		return Base{}, badBase(u)
	}
	b := Base{
		origin: scheme + "://" + u.Host,
		host:   u.Host,
		prefix: strings.TrimRight(u.EscapedPath(), "/"),
	}
	home, err := url.Parse(b.HomeURL())
	if err != nil {
		return Base{}, badBase(u)
	}
	b.home = home
	return b, nil
}

// badBase is the error of NewBase for u.
func badBase(u *url.URL) error {
	return fmt.Errorf("base URL %v is not an absolute http(s) URL with a host", u)
}

// BaseOr returns the base u names, or when u is unusable (see NewBase) the one fallback
// names: an adapter's DefaultBaseURL. It panics when fallback is unusable too.
func BaseOr(u *url.URL, fallback string) Base {
	if b, err := NewBase(u); err == nil {
		return b
	}
	def, err := url.Parse(fallback)
	if err != nil {
		panic(fmt.Sprintf("site: default base URL %q: %v", fallback, err))
	}
	b, err := NewBase(def)
	if err != nil {
		panic("site: default " + err.Error())
	}
	return b
}

// NewAdapter returns the adapter of the site info describes, whose New builds the Source
// with build on the base it is given, once the base is usable (NewBase).
func NewAdapter(info Info, build func(Base) Source) Adapter {
	return Adapter{Info: info, New: func(u *url.URL) (Source, error) {
		b, err := NewBase(u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", info.ID, err)
		}
		return build(b), nil
	}}
}

// URL returns the URL of path on the base: path is escaped and starts with "/", and
// the base's prefix comes before it.
func (b Base) URL(path string) string { return b.origin + b.prefix + path }

// HomeURL returns the URL of the site's home page, the base's prefix and a slash.
func (b Base) HomeURL() string { return b.URL("/") }

// Host returns the base's host, and port if any.
func (b Base) Host() string { return b.host }

// Prefix returns the base's escaped path without its trailing slash, usually "".
func (b Base) Prefix() string { return b.prefix }

// PageURL returns the absolute URL of a page a parser is given: a nil pageURL means the
// home page, and a relative one (or one without a host) is taken relative to it.
func (b Base) PageURL(pageURL *url.URL) *url.URL {
	switch {
	case pageURL == nil:
		return b.home
	case !pageURL.IsAbs() || pageURL.Host == "":
		return b.home.ResolveReference(pageURL)
	}
	return pageURL
}

// ParsePage decodes body (see Decode) and parses the UTF-8 result as HTML, into a
// document whose Url is pageURL, an absolute URL. It is the first step of every parser:
// a body that does not decode or parse is a *ParseError for the page kind at pageURL,
// and one that stops before the end of its document (Truncated) a truncated-page
// ParseError, since whatever the cut-off page holds would be read as all there is: a
// chapter list short of its newest chapters, a chapter short of its end. The html
// parser reads UTF-8 only and never looks at a meta charset tag, so the bytes are not
// sniffed twice.
func ParsePage(kind string, body []byte, pageURL *url.URL) (*goquery.Document, error) {
	text, err := Decode(body)
	if err != nil {
		return nil, ParseErrorf(kind, pageURL, "decode: %v", err)
	}
	if Truncated(text) {
		return nil, &ParseError{Page: kind, URL: pageURL.String(), Truncated: true,
			What: fmt.Sprintf("truncated: its %d bytes end before </body> and </html>", len(body))}
	}
	root, err := html.Parse(bytes.NewReader(text))
	if err != nil {
		return nil, ParseErrorf(kind, pageURL, "html: %v", err)
	}
	doc := goquery.NewDocumentFromNode(root)
	doc.Url = pageURL
	return doc, nil
}

// ParseErrorf returns a *ParseError for the page of the given kind at pageURL (nil when
// unknown), saying what was missing: format, formatted with args when there are any.
func ParseErrorf(kind string, pageURL *url.URL, format string, args ...any) error {
	what := format
	if len(args) > 0 {
		what = fmt.Sprintf(format, args...)
	}
	u := ""
	if pageURL != nil {
		u = pageURL.String()
	}
	return &ParseError{Page: kind, URL: u, What: what}
}
