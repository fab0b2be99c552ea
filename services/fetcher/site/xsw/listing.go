package xsw

import (
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selBookBox  = sel("div.bookbox")
	selBookInfo = sel("div.bookinfo")
	// selBookName lists the places of a book's title link, best first.
	selBookName = []goquery.Matcher{sel("h4.bookname i.iTit a"), sel("h4.bookname a"), sel(".bookname a")}
	selAuthor   = sel("div.author, .author")
	selUpdate   = sel("div.update, .update")
	selIntro    = sel("div.intro_line, .intro_line")
	selA        = sel("a")
	selBody     = sel("body")
)

// ParseListing reads the books of a category listing page, one per div.bookbox, in
// page order. A box without a title link is skipped; a page whose boxes all lack one is
// a *site.ParseError. A page without any div.bookbox is how the site says the category
// has no such page: it gives an empty list and no error, unless the page has no content
// at all (an empty body), which is a *site.ParseError rather than a silent end.
func (s *Source) ParseListing(body []byte, pageURL *url.URL) ([]site.ListingBook, error) {
	p, err := s.parsePage(pageListing, body, pageURL)
	if err != nil {
		return nil, err
	}
	boxes := p.doc.FindMatcher(selBookBox)
	if boxes.Length() == 0 {
		if strings.TrimSpace(p.doc.FindMatcher(selBody).Text()) == "" && p.doc.FindMatcher(selAnchors).Length() == 0 {
			return nil, p.errorf("empty page: no div.bookbox and no content")
		}
		return []site.ListingBook{}, nil
	}
	books := make([]site.ListingBook, 0, boxes.Length())
	boxes.Each(func(_ int, box *goquery.Selection) {
		if b, ok := p.listingBook(box); ok {
			books = append(books, b)
		}
	})
	if len(books) == 0 {
		return nil, p.errorf("%d div.bookbox but no book title link (h4.bookname a)", boxes.Length())
	}
	return books, nil
}

// listingBook reads one div.bookbox; false when it holds no title link.
func (p *page) listingBook(box *goquery.Selection) (site.ListingBook, bool) {
	info := box.FindMatcher(selBookInfo).First()
	if info.Length() == 0 {
		info = box
	}
	var a *goquery.Selection
	for _, m := range selBookName {
		if a = info.FindMatcher(m).First(); a.Length() > 0 {
			break
		}
	}
	if a.Length() == 0 {
		return site.ListingBook{}, false
	}
	var b site.ListingBook
	b.Name = text(a)
	href := attr(a, "href")
	if id, link, ok := p.bookLink(href); ok {
		b.BookID, b.BookURL = id, link
	} else {
		b.BookURL = p.resolve(href)
	}
	b.Author, _ = label(text(info.FindMatcher(selAuthor).First()), "作者")
	update := info.FindMatcher(selUpdate).First()
	if ua := update.FindMatcher(selA).First(); ua.Length() > 0 {
		b.LastChapterTitle = text(ua)
		if path, ok := p.siteLink(attr(ua, "href")); ok {
			b.LastChapterURL = p.origin + path
		}
	} else {
		b.LastChapterTitle, _ = label(text(update), "最新章節", "最新", "更新")
	}
	b.Intro, _ = label(text(info.FindMatcher(selIntro).First()), "簡介", "简介")
	return b, true
}
