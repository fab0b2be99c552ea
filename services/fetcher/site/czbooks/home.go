package czbooks

import (
	"net/url"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selMenuAnchors = sel("ul.nav.menu li a")
	selAnchors     = sel("a")
)

// ParseHome reads the category links of the home page: the anchors in
// ul.nav.menu li a whose link is a site page /c/{slug} (the slug word characters), or,
// when those hold no category link, every a of the page. Categories come in page order,
// deduplicated by slug; the name is the anchor's trimmed text, the first non-empty one
// of a category linked more than once; the URL is the link on the base. Later listing
// pages (/c/{slug}/2) are not categories. A home page without any category link is a
// *site.ParseError.
func (s *Source) ParseHome(body []byte, pageURL *url.URL) ([]site.Category, error) {
	p, err := s.parsePage(pageHome, body, pageURL)
	if err != nil {
		return nil, err
	}
	cats := p.categories(p.doc.FindMatcher(selMenuAnchors))
	if len(cats) == 0 {
		cats = p.categories(p.doc.FindMatcher(selAnchors))
	}
	if len(cats) == 0 {
		return nil, p.errorf("no category links (a[href] to /c/{slug}, in ul.nav.menu li a or anywhere)")
	}
	return cats, nil
}

// categories reads the category links among anchors.
func (p *page) categories(anchors *goquery.Selection) []site.Category {
	var cats []site.Category
	index := map[string]int{} // slug → position in cats
	anchors.Each(func(_ int, a *goquery.Selection) {
		l, ok := p.hrefLink(a)
		if !ok {
			return
		}
		slug, ok := categoryOf(l.path)
		if !ok {
			return
		}
		name := text(a)
		if i, seen := index[slug]; seen {
			if cats[i].Name == "" {
				cats[i].Name = name
			}
			return
		}
		index[slug] = len(cats)
		cats = append(cats, site.Category{ID: slug, Name: name, URL: l.url})
	})
	return cats
}
