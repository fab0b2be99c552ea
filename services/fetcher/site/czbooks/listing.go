package czbooks

import (
	"net/url"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	// selItems are the places of a listing's books, best first.
	selItems = []goquery.Matcher{sel("li.novel-item-wrapper > div.novel-item"), sel("div.novel-item")}
	// selCoverLink is the book link of an item.
	selCoverLink  = sel(".novel-item-cover-wrapper a[href]")
	selItemTitle  = sel(".novel-item-title")
	selItemAuthor = sel(".novel-item-author")
	selNewest     = sel(".novel-item-newest-chapter a")
	selA          = sel("a")
	selAHref      = sel("a[href]")
	selMenu       = sel("ul.nav.menu")
	// selOtherPages match what makes a page a book or a chapter page.
	selOtherPages = sel("div.novel-detail, .chapter-detail")
)

// ParseListing reads the books of a category listing page, one per
// li.novel-item-wrapper > div.novel-item (else per div.novel-item), in page order:
//
//   - the book link is .novel-item-cover-wrapper a[href], else the item's first link to
//     a book (/n/{book}); BookID is empty when the link names no book with a canonical
//     id; an item without a link to a site page is skipped;
//   - the title is the .novel-item-title (in the link, else in the item), else the
//     link's title attribute, one leading 《 and one trailing 》 stripped as on the book
//     page;
//   - the author is .novel-item-author a, else the text of .novel-item-author less a
//     作者： label;
//   - the newest chapter is .novel-item-newest-chapter a, its text and its link;
//   - listings have no description, and the bookmark and view counts
//     (.novel-item-status) have no field in the record.
//
// A page without items is past the category's end (an empty list and no error) when it
// has the site's layout: the category menu ul.nav.menu, or a link to a category. One
// without it (a blank, maintenance or challenge page), or a book or chapter page, is no
// listing at all: a *site.ParseError, as is a page whose items all lack a book link. A
// 404 ends a category before any of this.
func (s *Source) ParseListing(body []byte, pageURL *url.URL) ([]site.ListingBook, error) {
	p, err := s.parsePage(pageListing, body, pageURL)
	if err != nil {
		return nil, err
	}
	var items *goquery.Selection
	for _, m := range selItems {
		if items = p.doc.FindMatcher(m); items.Length() > 0 {
			break
		}
	}
	if items.Length() == 0 {
		switch {
		case p.doc.FindMatcher(selOtherPages).Length() > 0:
			return nil, p.errorf("not a listing page: no li.novel-item-wrapper > div.novel-item, and div.novel-detail or .chapter-detail")
		case !p.siteLayout():
			return nil, p.errorf("not a listing page: no li.novel-item-wrapper > div.novel-item, no ul.nav.menu and no category link")
		}
		return []site.ListingBook{}, nil
	}
	books := make([]site.ListingBook, 0, items.Length())
	items.Each(func(_ int, item *goquery.Selection) {
		if b, ok := p.listingBook(item); ok {
			books = append(books, b)
		}
	})
	if len(books) == 0 {
		return nil, p.errorf("%d div.novel-item but no book link (.novel-item-cover-wrapper a[href])", items.Length())
	}
	return books, nil
}

// siteLayout reports whether the page has the site's layout: the category menu
// (ul.nav.menu) or at least a link to a category. A page without books but with it is a
// listing past the category's end; one without it (a blank, maintenance or challenge
// page) is no listing at all.
func (p *page) siteLayout() bool {
	if p.doc.FindMatcher(selMenu).Length() > 0 {
		return true
	}
	found := false
	p.doc.FindMatcher(selAHref).EachWithBreak(func(_ int, a *goquery.Selection) bool {
		if l, ok := p.hrefLink(a); ok {
			_, found = categoryOf(l.path)
		}
		return !found
	})
	return found
}

// listingBook reads one div.novel-item; false when it holds no link to a site page.
func (p *page) listingBook(item *goquery.Selection) (site.ListingBook, bool) {
	var b site.ListingBook
	a := item.FindMatcher(selCoverLink).First()
	l, ok := p.hrefLink(a)
	if !ok {
		// No cover link to the site: the item's first link to a book.
		item.FindMatcher(selAHref).EachWithBreak(func(_ int, cand *goquery.Selection) bool {
			if cl, isSite := p.hrefLink(cand); isSite {
				if _, isBook := bookOf(cl.path); isBook {
					a, l, ok = cand, cl, true
				}
			}
			return !ok
		})
		if !ok {
			return b, false
		}
	}
	b.BookURL = l.url
	if id, ok := bookOf(l.path); ok {
		b.BookID = id
	}
	b.Name = text(a.FindMatcher(selItemTitle).First())
	if b.Name == "" {
		b.Name = text(item.FindMatcher(selItemTitle).First())
	}
	if b.Name == "" {
		b.Name = site.CollapseSpace(attr(a, "title"))
	}
	b.Name = bookTitle(b.Name)
	author := item.FindMatcher(selItemAuthor).First()
	if b.Author = text(author.FindMatcher(selA).First()); b.Author == "" {
		b.Author = label(text(author), "作者")
	}
	if newest := item.FindMatcher(selNewest).First(); newest.Length() > 0 {
		b.LastChapterTitle = text(newest)
		if nl, ok := p.hrefLink(newest); ok {
			b.LastChapterURL = nl.url
		}
	}
	return b, true
}
