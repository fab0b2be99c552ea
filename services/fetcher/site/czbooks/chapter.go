package czbooks

import (
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/xswtw/xsw/services/fetcher/site"
)

var (
	selChapterContent = sel(".chapter-detail div.content")
	selChapterName    = sel(".chapter-detail div.name")
	selH1             = sel("h1")
	selPageTitle      = sel("title")
)

// ParseChapter reads a chapter page. The text is .chapter-detail div.content: a page
// without it is a *site.ParseError, and so is one whose content holds no line once
// cleaned up:
//
//  1. script, style, noscript, iframe and ins elements, and any element of class ad or
//     ads, are left out with their content;
//  2. every <br> and every block element (p, div, …) ends a line;
//  3. entities are decoded;
//  4. each line is trimmed, ideographic and no-break spaces included (inline white space
//     collapses as in a browser: site.CollapseSpace);
//  5. empty lines and lines naming the site (czbooks, in any case or width) are dropped.
//
// The lines are joined by "\n". The title is .chapter-detail div.name, else the first h1
// holding a 第…章 number, else the 第…章 part of <title> (site.OrdinalPart), else empty.
// PrevURL and NextURL are the page's links to chapters of bookID saying 上一章 and 下一章
// (or of class, id or rel prev and next), when there are such links.
func (s *Source) ParseChapter(body []byte, pageURL *url.URL, bookID, chapterID string) (*site.Chapter, error) {
	p, err := s.parsePage(pageChapter, body, pageURL)
	if err != nil {
		return nil, err
	}
	content := p.doc.FindMatcher(selChapterContent).First()
	if content.Length() == 0 {
		return nil, p.errorf("no chapter text (.chapter-detail div.content)")
	}
	lines := site.TextLines(content.Get(0), adElement)
	kept := lines[:0]
	for _, l := range lines {
		if !namesSite(l) {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return nil, p.errorf("chapter text empty in .chapter-detail div.content")
	}
	c := &site.Chapter{BookID: bookID, ChapterID: chapterID, Text: strings.Join(kept, "\n")}
	c.Title = text(p.doc.FindMatcher(selChapterName).First())
	if c.Title == "" {
		p.doc.FindMatcher(selH1).EachWithBreak(func(_ int, h1 *goquery.Selection) bool {
			if t := text(h1); hasOrdinal(t) {
				c.Title = t
			}
			return c.Title == ""
		})
	}
	if c.Title == "" {
		c.Title = site.OrdinalPart(text(p.doc.FindMatcher(selPageTitle).First()))
	}
	c.PrevURL, c.NextURL = p.navLinks(bookID)
	return c, nil
}

// hasOrdinal reports whether t holds a 第…章 number.
func hasOrdinal(t string) bool {
	_, ok := site.TitleNumber(t)
	return ok
}

// adElement reports the elements of a chapter's content that are not its text beyond
// those site.TextLines leaves out: ins, and any element of class ad or ads.
func adElement(n *html.Node) bool {
	return n.DataAtom == atom.Ins || site.HasClass(n, "ad") || site.HasClass(n, "ads")
}

// sitePlain is the site's name as it appears in its own lines, lowercase.
const sitePlain = "czbooks"

// namesSite reports whether line names the site: it contains czbooks in any case, in
// ASCII or full-width letters (ｃｚｂｏｏｋｓ).
func namesSite(line string) bool {
	matched := 0
	for _, r := range line {
		if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
			r -= 0xFEE0
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		switch {
		case r == rune(sitePlain[matched]):
			matched++
			if matched == len(sitePlain) {
				return true
			}
		case r == rune(sitePlain[0]):
			matched = 1
		default:
			matched = 0
		}
	}
	return false
}

// navLinks returns the links of the page to the previous and the next chapter of
// bookID: anchors saying 上一章 or 下一章, or of class, id or rel prev or next.
func (p *page) navLinks(bookID string) (prev, next string) {
	p.doc.FindMatcher(selAHref).EachWithBreak(func(_ int, a *goquery.Selection) bool {
		dir := navDirection(a)
		if dir == 0 || dir < 0 && prev != "" || dir > 0 && next != "" {
			return true
		}
		l, ok := p.hrefLink(a)
		if !ok {
			return true
		}
		if book, _, ok := chapterOf(l.path); !ok || book != bookID {
			return true
		}
		if dir < 0 {
			prev = l.url
		} else {
			next = l.url
		}
		return prev == "" || next == ""
	})
	return prev, next
}

// navDirection reports whether a links to the previous chapter (-1), the next (1) or
// neither (0).
func navDirection(a *goquery.Selection) int {
	t := text(a)
	switch {
	case strings.Contains(t, "上一章"):
		return -1
	case strings.Contains(t, "下一章"):
		return 1
	}
	for _, name := range []string{"rel", "id", "class"} {
		for f := range strings.FieldsSeq(strings.ToLower(attr(a, name))) {
			switch f {
			case "prev", "previous":
				return -1
			case "next":
				return 1
			}
		}
	}
	return 0
}
