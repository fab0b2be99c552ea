package czbooks

import (
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

// parsePage parses body as the page of the given kind at pageURL (see site.ParsePage).
// A nil pageURL means the adapter's home page; a relative one is taken relative to it.
func (s *Source) parsePage(kind string, body []byte, pageURL *url.URL) (*page, error) {
	pageURL = s.base.PageURL(pageURL)
	doc, err := site.ParsePage(kind, body, pageURL)
	if err != nil {
		return nil, err
	}
	return &page{s: s, kind: kind, url: pageURL, doc: doc}, nil
}

// errorf returns a *site.ParseError for the page.
func (p *page) errorf(format string, args ...any) error {
	return site.ParseErrorf(p.kind, p.url, format, args...)
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
