package czbooks

import (
	"net/url"
	"strings"
	"unicode"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selDetail      = sel("div.novel-detail")
	selTitle       = sel(".info .title")
	selAuthor      = sel(".info .author")
	selStateRows   = sel(".state table tr")
	selCells       = sel("td, th")
	selCategory    = sel("a#novel-category")
	selDescription = sel(".description")
	selImg         = sel("img")
	selChapterList = sel("ul.chapter-list")
	selListItems   = sel("ul.chapter-list > li")
)

// finishedWords are the words of a finished book's status: a status containing any of
// them is finished (已完結 too).
var finishedWords = []string{"已完成", "完結", "完结"}

// ParseBook reads a book's page. Everything is inside div.novel-detail: a page without
// it, or without a title (.info .title, one leading 《 and one trailing 》 stripped), is
// a *site.ParseError. The rest is optional: the author (.info .author a), the status and
// update text from the label/value cells of .state table (labels matched by the word
// they contain once all their white space is gone: 狀態, 更新), the category's name
// (a#novel-category), the description (.description, its lines joined by "\n") and the
// cover (the first img). Finished is true when the status contains 已完成, 完結 or 完结.
// UpdateText is the raw text; UpdatedAt stays nil (format and zone are unknown).
//
// The page carries the whole chapter list: the direct li children of ul.chapter-list,
// in order. An li.volume is a volume header (Volumes, with the number of the chapter
// after it), never a chapter, even when it wraps a link. Any other li is a chapter: its
// first link to a chapter of bookID (/n/{bookID}/{chapter}), titled by the link's text;
// an li without one is skipped, and so is a chapter id seen before. Chapters are numbered
// 1, 2, … by position; a 第N章 in the title is TitleNumber. Book.TOC is the list as page
// 1 of 1, and the newest chapter (LastChapter*) is its last. A page without
// ul.chapter-list is a *site.ParseError; an empty list (or one of volume headers and
// unlinked items) is a book without chapters. A list whose items hold links of which
// none is a chapter of bookID (/n/{other}/…, /n/{bookID}/x.html, relative links
// resolving elsewhere) is a *site.ParseError too: links the adapter cannot read, not a
// book without chapters.
func (s *Source) ParseBook(body []byte, pageURL *url.URL, bookID string) (*site.Book, error) {
	p, err := s.parsePage(pageBook, body, pageURL)
	if err != nil {
		return nil, err
	}
	detail := p.doc.FindMatcher(selDetail).First()
	if detail.Length() == 0 {
		return nil, p.errorf("no book details (div.novel-detail)")
	}
	b := &site.Book{BookID: bookID, SourceURL: p.url.String(), Preview: []site.ChapterLink{}}
	b.Name = bookTitle(text(detail.FindMatcher(selTitle).First()))
	if b.Name == "" {
		return nil, p.errorf("no book title (div.novel-detail .info .title)")
	}
	author := detail.FindMatcher(selAuthor).First()
	if b.Author = text(author.FindMatcher(selA).First()); b.Author == "" {
		b.Author = label(text(author), "作者")
	}
	detail.FindMatcher(selStateRows).Each(func(_ int, row *goquery.Selection) {
		cells := row.ChildrenMatcher(selCells)
		for i := 0; i+1 < cells.Length(); i += 2 {
			key := stateKey(text(cells.Eq(i)))
			value := text(cells.Eq(i + 1))
			switch {
			case strings.Contains(key, "狀態") || strings.Contains(key, "状态"):
				if b.Status == "" {
					b.Status = value
				}
			case strings.Contains(key, "更新"):
				if b.UpdateText == "" {
					b.UpdateText = value
				}
			}
			// 收藏數 and 觀看數 (bookmarks, views): site.Book has no field for them.
		}
	})
	for _, w := range finishedWords {
		if strings.Contains(b.Status, w) {
			b.Finished = true
		}
	}
	category := detail.FindMatcher(selCategory).First()
	if category.Length() == 0 {
		category = p.doc.FindMatcher(selCategory).First()
	}
	b.Genre = text(category)
	if desc := detail.FindMatcher(selDescription).First(); desc.Length() > 0 {
		b.Description = strings.Join(site.TextLines(desc.Get(0), nil), "\n")
	}
	if img := detail.FindMatcher(selImg).First(); img.Length() > 0 {
		for _, name := range []string{"src", "data-src", "data-original"} {
			if b.CoverURL = s.resource(p.url, attr(img, name)); b.CoverURL != "" {
				break
			}
		}
	}

	// The list is in div.novel-detail like everything else, or anywhere as a fallback.
	scope := detail
	if scope.FindMatcher(selChapterList).Length() == 0 {
		if scope = p.doc.Selection; scope.FindMatcher(selChapterList).Length() == 0 {
			return nil, p.errorf("no chapter list (ul.chapter-list)")
		}
	}
	toc, linked := p.chapterList(scope.FindMatcher(selListItems).Nodes, bookID, b)
	if linked > 0 && len(toc.Chapters) == 0 {
		return nil, p.errorf("ul.chapter-list: %d li with links, none to a chapter of book %s (/n/%s/{chapter})", linked, bookID, bookID)
	}
	b.TOC = toc
	if n := len(b.TOC.Chapters); n > 0 {
		last := b.TOC.Chapters[n-1]
		b.LastChapterID, b.LastChapterTitle, b.LastChapterURL = last.ChapterID, last.Title, last.URL
	}
	return b, nil
}

// bookTitle strips one leading 《 and one trailing 》 from a title.
func bookTitle(t string) string {
	t = strings.TrimPrefix(t, "《")
	t = strings.TrimSuffix(t, "》")
	return strings.TrimSpace(t)
}

// stateKey returns a label of the state table without any white space (ideographic
// spaces included): 收 藏 數： gives 收藏數：.
func stateKey(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// chapterList reads the items of the chapter list into a table of contents of one page
// and b's volume headers. linked counts the items other than volume headers that hold
// a link to a page (linkedItem), whether or not it is a chapter of bookID.
func (p *page) chapterList(items []*html.Node, bookID string, b *site.Book) (toc *site.TOCPage, linked int) {
	toc = &site.TOCPage{BookID: bookID, Page: 1, TotalPages: 1, Chapters: make([]site.ChapterRef, 0, len(items))}
	seen := make(map[string]bool, len(items))
	for _, li := range items {
		if site.HasClass(li, "volume") {
			// Its text, less any list of its chapters nested in it.
			if title := textUnder(li, true); title != "" {
				b.Volumes = append(b.Volumes, site.Volume{Title: title, FirstChapter: len(toc.Chapters) + 1})
			}
			continue
		}
		ref, ok := p.chapterRef(li, bookID)
		if !ok {
			if linkedItem(li) {
				linked++
			}
			continue
		}
		linked++
		if seen[ref.ChapterID] {
			continue
		}
		seen[ref.ChapterID] = true
		ref.Number = len(toc.Chapters) + 1
		if n, ok := site.TitleNumber(ref.Title); ok {
			ref.TitleNumber = &n
		}
		toc.Chapters = append(toc.Chapters, ref)
	}
	return toc, linked
}

// linkedItem reports whether the element n holds an anchor linking to a page: an href
// that is neither empty, a fragment of this page, nor of a scheme other than http(s)
// (javascript:, mailto:).
func linkedItem(n *html.Node) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode {
			continue
		}
		if c.DataAtom == atom.A {
			for _, at := range c.Attr {
				if at.Key == "href" && pageHref(at.Val) {
					return true
				}
			}
		}
		if linkedItem(c) {
			return true
		}
	}
	return false
}

// pageHref reports whether href links to a page: it is not empty, not a fragment of this
// page, and its scheme, if any, is http or https.
func pageHref(href string) bool {
	href = strings.TrimSpace(href)
	if href == "" || href[0] == '#' {
		return false
	}
	u, err := url.Parse(href)
	if err != nil {
		return true // a link all the same, though no page can be made of it
	}
	return u.Scheme == "" || u.Scheme == "http" || u.Scheme == "https" // lower case: url.Parse
}

// chapterRef reads the first link under li to a chapter of bookID; false when there is
// none.
func (p *page) chapterRef(li *html.Node, bookID string) (site.ChapterRef, bool) {
	var ref site.ChapterRef
	found := false
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil && !found; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			if c.Data == "a" {
				if ref, found = p.chapterAnchor(c, bookID); found {
					return
				}
			}
			walk(c)
		}
	}
	walk(li)
	return ref, found
}

// chapterAnchor reads the anchor a as a link to a chapter of bookID.
func (p *page) chapterAnchor(a *html.Node, bookID string) (site.ChapterRef, bool) {
	var href string
	hasHref := false
	for _, at := range a.Attr {
		if at.Key == "href" {
			href, hasHref = at.Val, true
			break
		}
	}
	if !hasHref {
		return site.ChapterRef{}, false
	}
	l, ok := p.link(href)
	if !ok {
		return site.ChapterRef{}, false
	}
	book, chapter, ok := chapterOf(l.path)
	if !ok || book != bookID {
		return site.ChapterRef{}, false
	}
	return site.ChapterRef{ChapterID: chapter, Title: nodeText(a), URL: l.url}, true
}
