package xsw

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selAnchors = sel("a[href]")
	// reCategory matches the last path segment of a category's first listing page.
	reCategory = regexp.MustCompile(`/fenlei(\d{1,9})_1\.html$`)
)

// ParseHome reads the category links of the home page: anchors to
// fenlei{id}_1.html, deduplicated by id in page order. Each category is linked more
// than once (a short name in the navigation, the full one in the list); its name is the
// longest text among its anchors, the first of equals. A category's id is the number in
// its link without leading zeros (category 0 is none). A home page without any category
// link is a *site.ParseError.
func (s *Source) ParseHome(body []byte, pageURL *url.URL) ([]site.Category, error) {
	p, err := s.parsePage(pageHome, body, pageURL)
	if err != nil {
		return nil, err
	}
	var cats []site.Category
	index := map[string]int{} // category id → position in cats
	p.doc.FindMatcher(selAnchors).Each(func(_ int, a *goquery.Selection) {
		path, ok := p.siteLink(attr(a, "href"))
		if !ok {
			return
		}
		m := reCategory.FindStringSubmatch(path)
		if m == nil {
			return
		}
		id := strings.TrimLeft(m[1], "0")
		if id == "" {
			return
		}
		name := text(a)
		if i, seen := index[id]; seen {
			if utf8.RuneCountInString(name) > utf8.RuneCountInString(cats[i].Name) {
				cats[i].Name = name
			}
			return
		}
		index[id] = len(cats)
		cats = append(cats, site.Category{ID: id, Name: name, URL: p.origin + path})
	})
	if len(cats) == 0 {
		return nil, p.errorf("no category links (a[href] to fenlei{id}_1.html)")
	}
	return cats, nil
}
