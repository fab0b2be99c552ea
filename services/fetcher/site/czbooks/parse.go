package czbooks

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/xswtw/xsw/services/fetcher/site"
)

// Page kinds, as named in a site.ParseError.
const (
	pageHome    = "home"
	pageListing = "listing"
	pageBook    = "book"
	pageChapter = "chapter"
)

// sel compiles a constant CSS selector once, at package initialisation.
func sel(s string) cascadia.Selector { return cascadia.MustCompile(s) }

// page is a parsed page with what every parser needs to report and resolve.
type page struct {
	s    *Source
	kind string
	url  *url.URL // the page's URL, absolute, never nil
	doc  *goquery.Document
}

// parsePage decodes body (see site.Decode) and parses the UTF-8 result as HTML; a body
// that stops before the end of its document is a truncated-page error (site.Truncated).
// A nil pageURL means the adapter's home page; a relative one is taken relative to it.
func (s *Source) parsePage(kind string, body []byte, pageURL *url.URL) (*page, error) {
	switch {
	case pageURL == nil:
		pageURL = s.home
	case !pageURL.IsAbs() || pageURL.Host == "":
		pageURL = s.home.ResolveReference(pageURL)
	}
	p := &page{s: s, kind: kind, url: pageURL}
	text, err := site.Decode(body)
	if err != nil {
		return nil, p.errorf("decode: %v", err)
	}
	if site.Truncated(text) {
		// What a cut-off page holds would be read as all there is: a chapter list short of
		// its newest chapters, a chapter short of its end.
		return nil, &site.ParseError{Page: kind, URL: pageURL.String(), Truncated: true,
			What: fmt.Sprintf("truncated: its %d bytes end before </body> and </html>", len(body))}
	}
	root, err := html.Parse(bytes.NewReader(text))
	if err != nil {
		return nil, p.errorf("html: %v", err)
	}
	p.doc = goquery.NewDocumentFromNode(root)
	p.doc.Url = pageURL
	return p, nil
}

// errorf returns a *site.ParseError for the page.
func (p *page) errorf(format string, args ...any) error {
	what := format
	if len(args) > 0 {
		what = fmt.Sprintf(format, args...)
	}
	return &site.ParseError{Page: p.kind, URL: p.url.String(), What: what}
}

// link applies the link rule (Source.siteLink) to href on this page.
func (p *page) link(href string) (link, bool) { return p.s.siteLink(p.url, href) }

// hrefLink applies the link rule to the href of the first node of a.
func (p *page) hrefLink(a *goquery.Selection) (link, bool) { return p.link(attr(a, "href")) }

// attr returns the trimmed value of attribute name of the first node of s.
func attr(s *goquery.Selection, name string) string {
	v, _ := s.Attr(name)
	return strings.TrimSpace(v)
}

// text returns the text of the first node of s (see nodeText); "" when s is empty.
func text(s *goquery.Selection) string {
	if len(s.Nodes) == 0 {
		return ""
	}
	return nodeText(s.Nodes[0])
}

// nodeText returns the text under n, trimmed and its white space collapsed
// (site.CollapseSpace), without scripts, styles and comments.
func nodeText(n *html.Node) string { return textUnder(n, false) }

// textUnder is nodeText, leaving out nested lists (ul, ol) when skipLists is set.
func textUnder(n *html.Node, skipLists bool) string {
	// An element holding a single text node, as most links do: its text without a copy.
	if c := n.FirstChild; c != nil && c == n.LastChild && c.Type == html.TextNode {
		return site.CollapseSpace(c.Data)
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data)
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Noscript, atom.Template:
				return
			case atom.Ul, atom.Ol:
				if skipLists {
					return
				}
			}
		case html.CommentNode:
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return site.CollapseSpace(b.String())
}

// label strips a leading label such as 作者： from s: name followed by a full-width or
// half-width colon, with optional white space around it. s comes back unchanged when
// it does not start with name.
func label(s, name string) string {
	rest, ok := strings.CutPrefix(s, name)
	if !ok {
		return s
	}
	rest = strings.TrimSpace(rest)
	if v, ok := strings.CutPrefix(rest, "："); ok {
		return strings.TrimSpace(v)
	}
	if v, ok := strings.CutPrefix(rest, ":"); ok {
		return strings.TrimSpace(v)
	}
	return s
}
