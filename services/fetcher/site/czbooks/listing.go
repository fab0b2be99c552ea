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
	// selOtherPages match what makes a page a book or a chapter page.
	selOtherPages = sel("div.novel-detail, .chapter-detail")
)

// ParseListing reads the books of a category listing page, one per
// li.novel-item-wrapper > div.novel-item (else per div.novel-item), in page order:
//
//   - the book link is .novel-item-cover-wrapper a[href] when it is a site page
//     /n/{book}, else the item's first link to a book with a canonical id; BookID is
//     empty when the link names no book with a canonical id (/n/bad.id); an item
//     without a link to a book is skipped;
//   - the title is the .novel-item-title (in the link, else in the item), else the
//     link's title attribute, one leading 《 and one trailing 》 stripped as on the book
//     page;
//   - the author is .novel-item-author a, else the text of .novel-item-author less a
//     作者： label;
//   - the newest chapter is .novel-item-newest-chapter a, its text and its link;
//   - listings have no description, and the bookmark and view counts
//     (.novel-item-status) have no field in the record.
//
// A page without a book is past the category's end: an empty list and no error, since
// a 404 or a page without books ends a category. That is a page without items, or whose
// items all lack a book link, whatever else it holds or lacks (a menu, pagination, a
// "沒有作品" notice, nothing at all). Only a book or chapter page (div.novel-detail,
// .chapter-detail) is no listing at all: a *site.ParseError, the wrong page. A page cut
// short is a truncated-page ParseError (site.ParsePage), and a challenge page is told
// apart before parsing, by the client that fetched it.
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
	books := make([]site.ListingBook, 0, items.Length())
	items.Each(func(_ int, item *goquery.Selection) {
		if b, ok := p.listingBook(item); ok {
			books = append(books, b)
		}
	})
	if len(books) == 0 && p.doc.FindMatcher(selOtherPages).Length() > 0 {
		return nil, p.errorf("not a listing page: no book in li.novel-item-wrapper > div.novel-item, and div.novel-detail or .chapter-detail")
	}
	return books, nil
}

// listingBook reads one div.novel-item; false when it holds no link to a book.
func (p *page) listingBook(item *goquery.Selection) (site.ListingBook, bool) {
	var b site.ListingBook
	a := item.FindMatcher(selCoverLink).First()
	l, ok := p.hrefLink(a)
	if ok && !bookPath(l.path) {
		ok = false // a cover linking to a category or an author: no book
	}
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

// bookPath reports whether path, on the base, is that of a book page: /n/{book} with
// one non-empty segment, canonical or not (bookOf wants it canonical).
func bookPath(path string) bool {
	id, _, n := pathIDs(path, "n")
	return n == 1 && id != ""
}
